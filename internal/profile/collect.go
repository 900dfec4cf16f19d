package profile

import (
	"errors"
	"fmt"
	"sort"

	"github.com/fluid-os/fluid/internal/serial"
)

// Module is what one module sent.
type Module struct {
	Summary serial.Summary
	Profraw []byte // nil unless the module was instrumented
}

// Collect checks that every module in want sent a summary frame (and, when
// needProfraw is set, a profraw frame), that the summaries parse and say
// the run passed, and that nothing unexpected arrived. Errors name the
// module and join every problem found; they wrap ErrRefused.
func Collect(c *serial.Capture, want []string, needProfraw bool) (map[string]*Module, error) {
	mods := map[string]*Module{}
	wanted := map[string]bool{}
	for _, m := range want {
		wanted[m] = true
		mods[m] = &Module{}
	}
	var errs []error
	bad := func(module, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: module %s: %s", ErrRefused, module, fmt.Sprintf(format, args...)))
	}
	seen := map[string]bool{}
	for _, f := range c.Frames {
		key := f.Module + "/" + f.Kind
		if !wanted[f.Module] {
			bad(f.Module, "sent a %s frame but is not one of the modules built (%v); is the image stale?", f.Kind, want)
			continue
		}
		if seen[key] {
			bad(f.Module, "sent two %s frames", f.Kind)
			continue
		}
		seen[key] = true
		m := mods[f.Module]
		switch f.Kind {
		case serial.KindSummary:
			s, err := serial.DecodeSummary(f.Payload)
			if err != nil {
				bad(f.Module, "summary frame is not the expected JSON: %v", err)
				continue
			}
			m.Summary = s
			if m.Summary.Module != f.Module {
				bad(f.Module, "summary frame names module %q", m.Summary.Module)
			}
			if m.Summary.Result != "ok" {
				bad(f.Module, "the module's run reported result %q; fix the module before profiling it", m.Summary.Result)
			}
		case serial.KindProfraw:
			if len(f.Payload) == 0 {
				bad(f.Module, "empty profraw frame")
			}
			m.Profraw = f.Payload
		default:
			bad(f.Module, "unknown frame kind %q", f.Kind)
		}
	}
	for _, e := range c.Errors {
		bad(e.Module, "the guest could not produce its %s: %s", e.Kind, e.Reason)
		seen[e.Module+"/"+e.Kind] = true // reported already
	}
	names := append([]string(nil), want...)
	sort.Strings(names)
	for _, m := range names {
		if !seen[m+"/"+serial.KindSummary] {
			bad(m, "no summary frame in the serial log (did the module load and run?)")
		}
		if needProfraw && !seen[m+"/"+serial.KindProfraw] {
			bad(m, "no profraw frame in the serial log (was it built instrumented, with the profile hook?)")
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return mods, nil
}
