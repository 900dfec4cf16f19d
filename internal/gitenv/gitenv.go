// Package gitenv is the one place that says which environment git runs
// with when this project runs it on a repository of its choosing.
package gitenv

import (
	"os"
	"strings"
)

// Environ is the process's environment without the GIT_* variables
// (GIT_DIR, GIT_WORK_TREE, GIT_INDEX_FILE, ...) that would point git at
// another repository than the one named on its command line.
func Environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GIT_") {
			env = append(env, kv)
		}
	}
	return env
}
