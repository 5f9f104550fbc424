// Package deploy_test checks the files of deploy/: the systemd unit with
// systemd-analyze verify, the Dockerfile by its structure and by running
// its build command here (docker itself does not run in CI).
package deploy_test

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// lookTool finds a command, or skips the test (fails it in CI).
func lookTool(t *testing.T, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no %s (%s); .ci/run installs it", name, install)
		}
		t.Skipf("no %s (%s)", name, install)
	}
	return p
}

// buildCommand builds cmd/spdymux as the Dockerfile does (CGO_ENABLED=0,
// a version set at link time; -trimpath left out, which would compile the
// standard library once more), once for the tests of the package.
func buildCommand(t *testing.T) string {
	t.Helper()
	build.once.Do(func() {
		dir, err := os.MkdirTemp("", "spdymux-deploy-test")
		if err != nil {
			build.err = err
			return
		}
		build.bin = filepath.Join(dir, "spdymux")
		cmd := exec.Command("go", "build", "-ldflags", "-s -w -X github.com/spdymux/spdymux/internal/cli.version=v0.0.0-test",
			"-o", build.bin, "./cmd/spdymux")
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.bin
}

var build struct {
	once sync.Once
	bin  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if build.bin != "" {
		os.RemoveAll(filepath.Dir(build.bin))
	}
	os.Exit(code)
}

// unitValue returns the value of key in the unit's text, "" if absent.
func unitValue(unit, key string) string {
	sc := bufio.NewScanner(strings.NewReader(unit))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key+"="); ok {
			return v
		}
	}
	return ""
}

// TestSystemdUnit checks deploy/spdymux.service with systemd-analyze
// verify. The unit names /usr/local/bin/spdymux, which verify insists
// exists: the copy verified names a freshly built command instead; all
// else is the unit as shipped. Verify prints nothing for a good unit.
func TestSystemdUnit(t *testing.T) {
	analyze := lookTool(t, "systemd-analyze", "Debian: systemd")
	unit, err := os.ReadFile("spdymux.service")
	if err != nil {
		t.Fatal(err)
	}
	const binPath = "/usr/local/bin/spdymux"
	start := unitValue(string(unit), "ExecStart")
	if !strings.HasPrefix(start, binPath+" serve ") {
		t.Fatalf("ExecStart=%s; want %s serve ...", start, binPath)
	}
	dir := t.TempDir()
	bin := buildCommand(t)
	copyPath := filepath.Join(dir, "spdymux.service")
	if err := os.WriteFile(copyPath, bytes.ReplaceAll(unit, []byte(binPath), []byte(bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(analyze, "verify", copyPath)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}

	// The unit's default flags are flags serve takes: with them it gets
	// past its command line and fails only for files this machine lacks
	// (exit 1, not 2).
	env := unitValue(string(unit), "Environment")
	flags, ok := strings.CutPrefix(strings.Trim(env, `"`), "SPDYMUX_FLAGS=")
	if !ok {
		t.Fatalf("Environment=%s; want SPDYMUX_FLAGS=...", env)
	}
	args := strings.Fields(flags)
	for i := range args {
		if args[i] == ":443" {
			args[i] = "127.0.0.1:0" // no privileged port in a test
		}
		if args[i] == "127.0.0.1:9090" {
			args[i] = "127.0.0.1:0"
		}
	}
	run := exec.Command(bin, append([]string{"serve"}, args...)...)
	var stderr bytes.Buffer
	run.Stderr = &stderr
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- run.Wait() }()
	select {
	case err := <-done:
		code := run.ProcessState.ExitCode()
		if code != 1 || !strings.Contains(stderr.String(), `"level":"ERROR"`) {
			t.Errorf("spdymux serve with the unit's flags: %v, exit %d; want 1 and an error record for a missing file:\n%s", err, code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		run.Process.Kill()
		t.Errorf("spdymux serve with the unit's flags ran; want it to fail on the missing certificate or log directory")
	}

	for _, want := range []string{"ExecReload=/bin/kill -HUP $MAINPID", "KillSignal=SIGTERM", "DynamicUser=yes", "AmbientCapabilities=CAP_NET_BIND_SERVICE"} {
		if !bytes.Contains(unit, []byte(want+"\n")) {
			t.Errorf("the unit lacks %s", want)
		}
	}
}

// TestDockerfile checks deploy/Dockerfile as far as can be without docker:
// two stages, the first building a static binary with the Go of go.mod,
// the second copying only that binary; and the build command itself, run
// here, makes a static binary that runs.
func TestDockerfile(t *testing.T) {
	df, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var froms, copies, runs []string
	var cont string
	for line := range strings.Lines(string(df)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if cont != "" {
			line = cont + " " + line
			cont = ""
		}
		if l, ok := strings.CutSuffix(line, "\\"); ok {
			cont = strings.TrimSpace(l)
			continue
		}
		switch word, rest, _ := strings.Cut(line, " "); strings.ToUpper(word) {
		case "FROM":
			froms = append(froms, rest)
		case "COPY":
			copies = append(copies, rest)
		case "RUN":
			runs = append(runs, rest)
		case "WORKDIR", "ARG", "USER", "EXPOSE", "ENTRYPOINT", "CMD", "ENV", "LABEL":
		default:
			t.Errorf("unknown instruction %q", line)
		}
	}
	if len(froms) != 2 || !strings.HasSuffix(froms[0], " AS build") {
		t.Fatalf("FROM lines %q; want two stages, the first named build", froms)
	}
	goMod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goLine := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(goMod)
	if goLine == nil || !strings.HasPrefix(froms[0], "golang:"+string(goLine[1])+"-") {
		t.Errorf("build stage %q; want golang:%s, the Go of go.mod", froms[0], goLine[1])
	}
	if !strings.Contains(froms[1], "static") {
		t.Errorf("final stage %q; want an image for static binaries", froms[1])
	}
	last := copies[len(copies)-1]
	if !strings.HasPrefix(last, "--from=build ") || len(copies) != 3 {
		t.Errorf("COPY lines %q; want the module files, the source, and the binary from the build stage", copies)
	}
	build := runs[len(runs)-1]
	for _, want := range []string{"CGO_ENABLED=0 go build", "-trimpath", "./cmd/spdymux", "internal/cli.version="} {
		if !strings.Contains(build, want) {
			t.Errorf("build RUN %q lacks %q", build, want)
		}
	}
	if !bytes.Contains(df, []byte(`ENTRYPOINT ["/usr/local/bin/spdymux"]`)) || !bytes.Contains(df, []byte("USER nonroot")) {
		t.Error("want the binary as the entry point, run as nonroot")
	}

	bin := buildCommand(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary has a dynamic loader: not static")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary needs %v: not static", libs)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "spdymux v0.0.0-test (") || !strings.Contains(string(out), runtime.GOOS+"/"+runtime.GOARCH) {
		t.Errorf("spdymux version: %q, %v", out, err)
	}
}
