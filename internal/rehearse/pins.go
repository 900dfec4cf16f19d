package rehearse

// pins are the releases of the third-party actions the stand-ins in
// .github/rehearsal/actions/ imitate: owner/repo → commit SHA → version.
// A workflow that uses another commit (a bumped or mistyped pin) is
// refused before act starts: its stand-in has to be checked against that
// release first (inputs, outputs, behaviour), then its SHA added here.
var pins = map[string]map[string]string{
	"actions/checkout":                {"11bd71901bbe5b1630ceea73d27597364c9af683": "v4.2.2"},
	"actions/setup-go":                {"d35c59abb061a4a6fb18e82ac0862c26744d6ab5": "v5.5.0"},
	"actions/cache":                   {"5a3ec84eff668545956fd18022155c47e93e2684": "v4.2.3"},
	"actions/upload-artifact":         {"ea165f8d65b6e75b540449e92b4886f43607fa02": "v4.6.2"},
	"actions/download-artifact":       {"d3f86a106a0bac45b974a628896c90dbdf5c8093": "v4.3.0"},
	"actions/attest-build-provenance": {"e8998f949152b193b063cb0ec769d69d929409be": "v2.4.0"},
}
