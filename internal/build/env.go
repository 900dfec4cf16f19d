package build

import (
	"os"
)

// OptionsFromEnv reads the environment knobs every mage target honours:
//
//	LIGHT=1               shrink the workloads (debugging)
//	SOURCE_DATE_EPOCH=N   the only time that reaches an artifact
//	FLUID_VERSION=vX.Y.Z  the version string baked into the kernel
//	FLUID_LLVM=19|DIR     which LLVM to use (see internal/toolchain)
//	FLUID_BUILD_DIR=DIR   output directory (default build/)
func OptionsFromEnv() Options {
	return Options{
		Light: truthy(os.Getenv("LIGHT")),
		Out:   os.Getenv("FLUID_BUILD_DIR"),
	}
}

func truthy(s string) bool {
	switch s {
	case "1", "true", "yes", "on", "TRUE", "YES", "ON":
		return true
	}
	return false
}
