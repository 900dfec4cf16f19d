package build

import (
	"fmt"
	"os"
)

// OptionsFromEnv reads the environment knobs every mage target honours:
//
//	LIGHT=1               shrink the workloads (debugging)
//	SOURCE_DATE_EPOCH=N   the only time that reaches an artifact
//	FLUID_VERSION=vX.Y.Z  the version string baked into the kernel
//	FLUID_LLVM=19|DIR     which LLVM to use (see internal/toolchain)
//	FLUID_BUILD_DIR=DIR   output directory (default build/)
//	FLUID_LLAMA_MODEL=F   the llama module runs this GGUF file (e.g.
//	                      TinyLlama-1.1B-Chat Q8_0) instead of the generated
//	                      test model; checked before anything is built
//	FLUID_LLAMA_PROMPT=S  its prompt (default "once upon a time")
//	FLUID_LLAMA_TOKENS=N  how many tokens it generates (default 32)
func OptionsFromEnv() Options {
	return Options{
		Light: truthy(os.Getenv("LIGHT")),
		Out:   os.Getenv("FLUID_BUILD_DIR"),
		byo:   byoEnv{model: os.Getenv(EnvLlamaModel), prompt: os.Getenv(EnvLlamaPrompt), tokens: os.Getenv(EnvLlamaTokens)},
	}
}

// byoEnv is the FLUID_LLAMA_* knobs as read; New turns them into
// Options.Llama (ByoLlama), the one way other llama files reach a build.
type byoEnv struct{ model, prompt, tokens string }

// resolve returns the LlamaFiles the knobs ask for, or nil.
func (e byoEnv) resolve() (*LlamaFiles, error) {
	if e.model == "" {
		if e.prompt != "" || e.tokens != "" {
			return nil, fmt.Errorf("%s or %s is set but %s is not: they apply to your own model; the generated test model runs its fixed prompt", EnvLlamaPrompt, EnvLlamaTokens, EnvLlamaModel)
		}
		return nil, nil
	}
	return ByoLlama(e.model, e.prompt, e.tokens)
}

func truthy(s string) bool {
	switch s {
	case "1", "true", "yes", "on", "TRUE", "YES", "ON":
		return true
	}
	return false
}
