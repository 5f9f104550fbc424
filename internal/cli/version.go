package cli

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// version, when set at link time (-ldflags "-X
// github.com/spdymux/spdymux/internal/cli.version=v1.2.3"), is the
// version the command reports; otherwise it is read from the build
// information: the module version for `go install ...@v1.2.3`, the VCS
// revision for a build in a checkout.
var version string

// buildVersion returns the version and a parenthesized description of the
// build: "v1.2.3", "(commit 0123abcd4567, 2026-11-28T08:00:00Z, go1.26.8
// linux/amd64)".
func buildVersion() (string, string) {
	v := version
	var facts []string
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" {
			v = bi.Main.Version
		}
		settings := map[string]string{}
		for _, s := range bi.Settings {
			settings[s.Key] = s.Value
		}
		if rev := settings["vcs.revision"]; rev != "" {
			c := "commit " + rev[:min(len(rev), 12)]
			if settings["vcs.modified"] == "true" {
				c += " (modified)"
			}
			facts = append(facts, c)
			if t := settings["vcs.time"]; t != "" {
				facts = append(facts, t)
			}
		}
	}
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	facts = append(facts, runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH)
	return v, "(" + strings.Join(facts, ", ") + ")"
}

// versionLine is what `spdymux version` prints.
func versionLine() string {
	v, facts := buildVersion()
	return "spdymux " + v + " " + facts
}

func runVersion(_ context.Context, e *env, args []string) (int, error) {
	if len(args) > 0 {
		return exitUsage, fmt.Errorf("unexpected argument %q: version takes none", args[0])
	}
	fmt.Fprintln(e.stdout, versionLine())
	return exitOK, nil
}
