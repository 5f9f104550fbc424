package cli

import (
	"net"
	"os"
	"strings"
	"testing"
)

// TestREADMEExamples runs the README's spdymux get and bench examples
// against the default `spdymux serve` (on 127.0.0.1:8443 when that port
// is free, else on another one, put into the commands), with stdout seen
// as a terminal, as a user would type them. Runs that take long are made
// shorter: -D 10s becomes -D 1s, -n 20000 becomes -n 2000.
func TestREADMEExamples(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var cmds []string
	for line := range strings.Lines(string(readme)) {
		if cmd, ok := strings.CutPrefix(line, "    spdymux "); ok {
			cmds = append(cmds, strings.TrimSpace(cmd))
		}
	}
	var gets, benches int
	for _, c := range cmds {
		gets += boolInt(strings.HasPrefix(c, "get "))
		benches += boolInt(strings.HasPrefix(c, "bench "))
	}
	if gets < 2 || benches < 2 {
		t.Fatalf("found %d get and %d bench examples in README.md; want the client section's", gets, benches)
	}

	var s *serving
	const defaultAddr = "127.0.0.1:8443"
	addr := defaultAddr
	if l, err := net.Listen("tcp", defaultAddr); err == nil {
		l.Close()
		s = startServe(t)
	} else {
		s = startServe(t, "-listen", "127.0.0.1:0")
		addr = s.addrs.tls.String()
	}
	if got := s.addrs.tls.String(); got != addr || s.addrs.plain != nil {
		t.Fatalf("the default serve listens on %v and %v; want TLS on %s alone", s.addrs.tls, s.addrs.plain, addr)
	}
	t.Chdir(t.TempDir()) // for -o out.bin
	for _, c := range cmds {
		word, _, _ := strings.Cut(c, " ")
		switch word {
		case "get", "bench", "version":
		default:
			continue // serve: that is the server
		}
		args := strings.Fields(strings.NewReplacer(defaultAddr, addr, "-D 10s", "-D 1s", "-n 20000", "-n 2000").Replace(c))
		code, stdout, stderr := runCmdTTY(t, args...)
		if code != 0 {
			t.Errorf("spdymux %s: exit %d\nstdout: %s\nstderr: %s", c, code, tail(stdout, 5), tail(stderr, 10))
		}
	}
	if b, err := os.ReadFile("out.bin"); err != nil || len(b) != 1000 {
		t.Errorf("get -o out.bin: %d bytes, %v; want 1000", len(b), err)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
