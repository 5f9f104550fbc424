package h2interop

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spdymux/spdymux/internal/interop"
)

// findCurl returns the path of a curl with HTTP/2 support.
func findCurl(t *testing.T) string {
	t.Helper()
	bin := interop.LookTool(t, "curl", "install curl (Debian: curl)")
	out, err := exec.Command(bin, "--version").Output()
	if err != nil || !bytes.Contains(out, []byte("HTTP2")) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("this curl has no HTTP/2 support (%v):\n%s", err, out)
		}
		t.Skipf("this curl has no HTTP/2 support (%v)", err)
	}
	return bin
}

// run runs a command for at most 60 s and returns its stdout; a failure
// fails the test.
func run(t *testing.T, stdin []byte, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %q: %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(name), args, err, tail(stdout.String(), 40), tail(stderr.String(), 40))
	}
	return stdout.String()
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// headerLines returns the lines of a curl header dump (-D) that start
// with name and a colon, values only, in order.
func headerLines(dump, name string) []string {
	var out []string
	for line := range strings.Lines(dump) {
		k, v, ok := strings.Cut(strings.TrimRight(line, "\r\n"), ":")
		if ok && strings.EqualFold(k, name) {
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}

// TestCurl runs curl with --http2 (h2 by ALPN, the certificate verified)
// and --http2-prior-knowledge (h2c) through every handler but request
// trailers, which curl cannot send.
func TestCurl(t *testing.T) {
	bin := findCurl(t)
	s := startServer(t)
	for _, h2c := range []bool{false, true} {
		t.Run(protocol(h2c), func(t *testing.T) {
			testCurl(t, s, bin, h2c)
		})
	}
}

func testCurl(t *testing.T, s *server, bin string, h2c bool) {
	base := s.url(h2c)
	proto := protocol(h2c)
	dir := t.TempDir()
	// curl runs one command; every command is one connection.
	curl := func(t *testing.T, stdin []byte, args ...string) string {
		t.Helper()
		opts := []string{"-sS", "--max-time", "60"}
		if h2c {
			opts = append(opts, "--http2-prior-knowledge")
		} else {
			opts = append(opts, "--http2", "--cacert", s.certFile)
		}
		out := run(t, stdin, bin, append(opts, args...)...)
		s.checkOneSession(t, proto)
		return out
	}

	t.Run("protocol", func(t *testing.T) {
		out := curl(t, nil, "-w", "\n%{http_version} %{num_connects}", base+"/proto")
		body, w, _ := strings.Cut(out, "\n\n")
		if w != "2 1" {
			t.Errorf("http_version and num_connects %q; want \"2 1\"", w)
		}
		if !strings.Contains(body, `"protocol":"`+proto+`"`) {
			t.Errorf("/proto: %s; want protocol %s", body, proto)
		}
	})

	t.Run("50 parallel streams on one connection", func(t *testing.T) {
		if h2c {
			// curl 7.88 cannot use a prior-knowledge connection for a
			// second transfer, in parallel or after the first: it fails
			// with "Error in the HTTP2 framing layer" before sending
			// anything, against Go's own h2c server too.
			t.Skip("curl cannot reuse an h2c prior-knowledge connection")
		}
		// All at once: the gate opens once all 50 are in their handlers.
		const n = 50
		sz := sizes(n, 200000)
		args := []string{"-w", "%{http_version} %{num_connects} %{http_code}\n", "--parallel", "--parallel-max", strconv.Itoa(n)}
		q := fmt.Sprintf("?gate=curl-%s&n=%d", proto, n)
		for i := range n {
			args = append(args, "-o", filepath.Join(dir, fmt.Sprintf("p%d", i)), fmt.Sprintf("%s/bytes/%d%s", base, sz[i], q))
		}
		out := curl(t, nil, args...)
		connects := 0
		lines := strings.Split(strings.TrimSpace(out), "\n")
		for _, l := range lines {
			f := strings.Fields(l)
			if len(f) != 3 || f[0] != "2" || f[2] != "200" {
				t.Errorf("transfer %q; want HTTP/2 and 200", l)
				continue
			}
			k, _ := strconv.Atoi(f[1])
			connects += k
		}
		if len(lines) != n || connects != 1 {
			t.Errorf("%d transfers over %d new connections; want %d over 1", len(lines), connects, n)
		}
		for i := range n {
			b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("p%d", i)))
			if err != nil || !bytes.Equal(b, patternBytes(sz[i])) {
				t.Errorf("transfer %d: %d bytes (%v); want %d pattern bytes", i, len(b), err, sz[i])
			}
		}
	})

	t.Run("download 4 MiB", func(t *testing.T) {
		for _, path := range []string{"/bytes/", "/stream/"} {
			file := filepath.Join(dir, "download")
			w := curl(t, nil, "-o", file, "-w", "%{http_code} %{size_download}", base+path+strconv.Itoa(bigBody))
			b, err := os.ReadFile(file)
			if err != nil || w != fmt.Sprintf("200 %d", bigBody) || sha(b) != patternSHA(bigBody) {
				t.Errorf("%s: %q, %d bytes (%v); want 200 and the %d pattern bytes", path, w, len(b), err, bigBody)
			}
		}
	})

	t.Run("upload 4 MiB", func(t *testing.T) {
		upload := filepath.Join(dir, "upload")
		if err := os.WriteFile(upload, patternBytes(bigBody), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name  string
			stdin []byte
			args  []string
			cl    string
		}{
			// --data-binary sends the file with its content-length; -T -
			// streams stdin, of unknown length.
			{"content-length", nil, []string{"--data-binary", "@" + upload}, strconv.Itoa(bigBody)},
			{"no content-length", patternBytes(bigBody), []string{"-X", "POST", "-T", "-"}, "-1"},
		} {
			file := filepath.Join(dir, "echoed")
			dump := curl(t, tc.stdin, append(tc.args, "-H", "Content-Type: application/octet-stream", "-D", "-", "-o", file, base+"/echo")...)
			b, err := os.ReadFile(file)
			if err != nil || sha(b) != patternSHA(bigBody) {
				t.Errorf("%s: %d bytes back (%v); want the %d sent", tc.name, len(b), err, bigBody)
			}
			if got := headerLines(dump, "x-request-content-length"); !slices.Equal(got, []string{tc.cl}) {
				t.Errorf("%s: the handler saw content-length %q; want %s", tc.name, got, tc.cl)
			}
			// The trailers follow the body in the dump.
			if got := headerLines(dump, "x-echo-sha256"); !slices.Equal(got, []string{patternSHA(bigBody)}) {
				t.Errorf("%s: trailer x-echo-sha256 %q; want %s", tc.name, got, patternSHA(bigBody))
			}
		}
	})

	t.Run("HEAD", func(t *testing.T) {
		dump := curl(t, nil, "-I", base+"/bytes/123456")
		if !strings.HasPrefix(dump, "HTTP/2 200") || !slices.Equal(headerLines(dump, "content-length"), []string{"123456"}) {
			t.Errorf("HEAD: %q; want HTTP/2 200 with content-length 123456", dump)
		}
	})

	t.Run("204 and 304", func(t *testing.T) {
		for _, code := range []int{204, 304} {
			out := curl(t, nil, "-D", "-", "-w", "%{http_code} %{size_download}", fmt.Sprintf("%s/status/%d", base, code))
			if !strings.HasPrefix(out, fmt.Sprintf("HTTP/2 %d", code)) || !strings.HasSuffix(out, fmt.Sprintf("\r\n\r\n%d 0", code)) {
				t.Errorf("/status/%d: %q; want the status and no body", code, out)
			}
			if code == 304 && !slices.Equal(headerLines(out, "etag"), []string{`"v1"`}) {
				t.Errorf("304: etag %q", headerLines(out, "etag"))
			}
		}
	})

	t.Run("many fields and set-cookie", func(t *testing.T) {
		args := []string{"-D", "-", "-o", filepath.Join(dir, "headers"), "-H", "Cookie: a=1; b=2; c=3"}
		for i := range 50 {
			args = append(args, "-H", fmt.Sprintf("X-Req-%02d: %d", i, i))
		}
		dump := curl(t, nil, append(args, base+"/headers")...)
		for i := range manyFields {
			k := fmt.Sprintf("x-many-%03d", i)
			if got, want := headerLines(dump, k), fmt.Sprintf("value %d of %d", i, manyFields); !slices.Equal(got, []string{want}) {
				t.Errorf("%s: %q; want %q", k, got, want)
			}
		}
		if got := headerLines(dump, "set-cookie"); !slices.Equal(got, cookies) {
			t.Errorf("set-cookie %q; want %q", got, cookies)
		}
		body, _ := os.ReadFile(filepath.Join(dir, "headers"))
		for i := range 50 {
			if want := fmt.Sprintf(`"X-Req-%02d":["%d"]`, i, i); !bytes.Contains(body, []byte(want)) {
				t.Errorf("the handler did not see %s: %s", want, body)
			}
		}
		if !bytes.Contains(body, []byte(`"Cookie":["a=1; b=2; c=3"]`)) {
			t.Errorf("the handler did not see the cookie as one field: %s", body)
		}
	})

	t.Run("response trailers", func(t *testing.T) {
		out := curl(t, nil, "-D", "-", base+"/trailers")
		head, rest, _ := strings.Cut(out, "\r\n\r\n")
		if !strings.HasPrefix(head, "HTTP/2 200") || !strings.HasPrefix(rest, "trailers follow\n") {
			t.Fatalf("/trailers: %q", out)
		}
		if got := headerLines(rest, "x-trailer-one"); !slices.Equal(got, []string{"one"}) {
			t.Errorf("trailer x-trailer-one %q; want one (dump %q)", got, out)
		}
		if got := headerLines(rest, "x-trailer-two"); !slices.Equal(got, []string{"two"}) {
			t.Errorf("trailer x-trailer-two %q; want two (dump %q)", got, out)
		}
	})

	t.Run("103 Early Hints", func(t *testing.T) {
		out := curl(t, nil, "-D", "-", base+"/early-hints")
		parts := strings.SplitN(out, "\r\n\r\n", 3)
		if len(parts) != 3 {
			t.Fatalf("/early-hints: %q; want a 103, a 200 and a body", out)
		}
		if !strings.HasPrefix(parts[0], "HTTP/2 103") || !slices.Equal(headerLines(parts[0], "link"), []string{earlyLink}) {
			t.Errorf("interim response %q; want 103 with link %s", parts[0], earlyLink)
		}
		if !strings.HasPrefix(parts[1], "HTTP/2 200") || !slices.Equal(headerLines(parts[1], "link"), []string{earlyLink, finalLink}) || parts[2] != "early hints sent\n" {
			t.Errorf("final response %q %q", parts[1], parts[2])
		}
	})
}
