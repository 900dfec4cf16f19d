package build

// InstrumentFlags are the clang flags that make a module build the
// instrumented build. Everything else is identical to the optimized build.
// Value profiling stays off: its runtime needs calloc and locks, and the
// profile would carry load addresses of indirect-call targets.
func InstrumentFlags() []string {
	return []string{"-fprofile-instr-generate", "-mllvm", "-enable-value-profiling=false"}
}

// UseFlags are the clang flags of the PGO build for one module's indexed
// profile. The three warnings clang 18/19 emit for a profile that does
// not fit the source are errors here:
//
//	-Wprofile-instr-out-of-date  functions whose CFG hash changed since capture
//	-Wprofile-instr-unprofiled   a source file with no profile data at all
//	-Wprofile-instr-missing      functions the profile has no record for
func UseFlags(indexed string) []string {
	return []string{
		"-fprofile-instr-use=" + indexed,
		"-Werror=profile-instr-out-of-date",
		"-Werror=profile-instr-unprofiled",
		"-Werror=profile-instr-missing",
		// Lay basic blocks out by the profile's edge counts (ext-TSP, the
		// layout algorithm made for profiles; off by default in LLVM 18/19).
		// It changes only code layout, not the CFG the profile is matched to.
		"-mllvm", "-enable-ext-tsp-block-placement=1",
		// LLVM 18 peels the first iteration of loops whose profile shows a
		// small trip count. Here that is tail-recursion loops (fib) and
		// short inner loops (sort), and peeling costs more instructions
		// than it saves: with it, fib ran 1.037x and sort 1.065x the
		// baseline's guest instructions under PGO; without it 0.947x and
		// 0.996x (go tool mage bench, LLVM 18.1.8).
		"-mllvm", "-unroll-allow-peeling=false",
	}
}
