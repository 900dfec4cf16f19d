package oci

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// BasicAuth returns an authenticator for a username/token pair such as
// GITHUB_ACTOR/GITHUB_TOKEN, or nil if token is empty, which makes [Push]
// use the default keychain (~/.docker/config.json, credential helpers).
func BasicAuth(username, token string) authn.Authenticator {
	if token == "" {
		return nil
	}
	return &authn.Basic{Username: username, Password: token}
}

// Push uploads img to repo (e.g. ghcr.io/fluid-os/fluid-toolchain) by
// digest, then points each of tags (e.g. "llvm18") at it, and returns the
// pushed reference repo@sha256:.... A nil auth means the default keychain.
//
// It fails if the registry answers a manifest PUT with a
// Docker-Content-Digest other than img's digest, if the manifest it then
// serves by that digest has other bytes, or if a tag resolves elsewhere;
// with [ErrStalled] if the registry makes no progress for minutes, and on
// any response body larger than a few MiB.
func Push(ctx context.Context, img v1.Image, repo string, auth authn.Authenticator, tags ...string) (string, error) {
	r, err := name.NewRepository(repo, name.StrictValidation)
	if err != nil {
		return "", fmt.Errorf("oci: repository %q needs a registry and a path: %w", repo, err)
	}
	want, err := img.Digest()
	if err != nil {
		return "", fmt.Errorf("oci: computing image digest: %w", err)
	}
	ref := r.Digest(want.String())
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithTransport(&digestChecker{base: &guard{base: remote.DefaultTransport, idle: stallTimeout, limit: maxResponseBody}, want: want}),
	}
	if auth != nil {
		opts = append(opts, remote.WithAuth(auth))
	} else {
		opts = append(opts, remote.WithAuthFromKeychain(authn.DefaultKeychain))
	}

	if err := remote.Write(ref, img, opts...); err != nil {
		return "", fmt.Errorf("oci: pushing %s: %w", ref, err)
	}
	// GET by digest: remote checks that the served bytes hash to want.
	desc, err := remote.Get(ref, opts...)
	if err != nil {
		return "", fmt.Errorf("oci: reading back %s: %w", ref, err)
	}
	if desc.Digest != want {
		return "", fmt.Errorf("oci: registry serves %s for %s", desc.Digest, ref)
	}

	for _, t := range tags {
		tag, err := name.NewTag(r.Name()+":"+t, name.StrictValidation)
		if err != nil {
			return "", fmt.Errorf("oci: tag %q: %w", t, err)
		}
		if err := remote.Tag(tag, img, opts...); err != nil {
			return "", fmt.Errorf("oci: tagging %s: %w", tag, err)
		}
		d, err := remote.Head(tag, opts...)
		if err != nil {
			return "", fmt.Errorf("oci: reading back %s: %w", tag, err)
		}
		if d.Digest != want {
			return "", fmt.Errorf("oci: registry resolves %s to %s, pushed %s", tag, d.Digest, want)
		}
	}
	return ref.String(), nil
}

// digestChecker fails a successful manifest PUT whose Docker-Content-Digest
// is not want (ggcr's remote ignores that header).
type digestChecker struct {
	base http.RoundTripper
	want v1.Hash
}

func (c *digestChecker) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(req)
	if err != nil || req.Method != http.MethodPut || !strings.Contains(req.URL.Path, "/manifests/") ||
		resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp, err
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != c.want.String() {
		resp.Body.Close()
		return nil, fmt.Errorf("oci: registry reported digest %s for the manifest, expected %s", got, c.want)
	}
	return resp, nil
}
