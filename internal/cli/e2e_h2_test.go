package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spdymux/spdymux/internal/apachetest"
	"github.com/spdymux/spdymux/internal/interop"
)

// TestEndToEndApacheH2 sends HTTP/2 from clients nobody here wrote — curl,
// Go's net/http and node's built-in http2 — over TLS (h2 by ALPN) and
// cleartext (h2c by prior knowledge) to `spdymux serve -backend`, in front
// of a real Apache httpd: static files byte for byte, uploads through a
// CGI script, and what Apache was told: HTTP/1.1 requests with Forwarded
// and X-Forwarded-*.
func TestEndToEndApacheH2(t *testing.T) {
	a := apachetest.Start(t)
	s := startServe(t, "-listen", "127.0.0.1:0", "-listen-plain", "127.0.0.1:0",
		"-backend", a.URL(), "-backend-timeout", "10s", "-access-log", "-", "-log-level", "error")
	tlsURL := "https://" + s.addrs.tls.String()
	h2cURL := "http://" + s.addrs.plain.String()
	const upload = 4 << 20
	bigSHA := interop.PatternSHA256(apachetest.BigSize)
	logStart := len(a.AccessLog()) // past apachetest's own requests
	// runs counts the client runs (client and transport) that fetched the
	// big file once and echoed twice.
	var runs atomic.Int32

	// checkSeen checks the X-Seen-* fields of a CGI echo: what Apache
	// told the script of the request.
	// host is the :authority the client sent: the URL's host and port,
	// but for node, which sends its TLS server name (localhost) with the
	// port.
	checkSeen := func(t *testing.T, get func(string) string, base, host string, contentLength int) {
		t.Helper()
		if host == "" {
			host = strings.TrimPrefix(strings.TrimPrefix(base, "https://"), "http://")
		}
		proto := "https"
		if strings.HasPrefix(base, "http://") {
			proto = "http"
		}
		want := map[string]string{
			"X-Seen-Forwarded":       fmt.Sprintf(`for=127.0.0.1;host="%s";proto=%s`, host, proto),
			"X-Seen-Forwarded-For":   "127.0.0.1",
			"X-Seen-Forwarded-Proto": proto,
			"X-Seen-Forwarded-Host":  host,
			"X-Seen-Method":          "POST",
			"X-Seen-Content-Length":  "",
		}
		if contentLength >= 0 {
			want["X-Seen-Content-Length"] = strconv.Itoa(contentLength)
		}
		for k, v := range want {
			if got := get(k); got != v {
				t.Errorf("the CGI saw %s %q; want %q", k, got, v)
			}
		}
	}

	t.Run("curl", func(t *testing.T) {
		bin := interop.LookTool(t, "curl", "install curl (Debian: curl)")
		if out, err := exec.Command(bin, "--version").Output(); err != nil || !bytes.Contains(out, []byte("HTTP2")) {
			if os.Getenv("CI") == "true" {
				t.Fatalf("this curl has no HTTP/2 support (%v)", err)
			}
			t.Skipf("this curl has no HTTP/2 support (%v)", err)
		}
		dir := t.TempDir()
		uploadFile := filepath.Join(dir, "upload")
		if err := os.WriteFile(uploadFile, interop.PatternBytes(upload), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, base := range []string{tlsURL, h2cURL} {
			t.Run(strings.SplitN(base, ":", 2)[0], func(t *testing.T) {
				opts := []string{"-sS", "--max-time", "60", "--http2", "-k"}
				if base == h2cURL {
					opts = []string{"-sS", "--max-time", "60", "--http2-prior-knowledge"}
				}
				curl := func(stdin []byte, args ...string) string {
					t.Helper()
					return runH2Tool(t, stdin, bin, append(opts, args...)...)
				}
				out := curl(nil, "-o", filepath.Join(dir, "big"), "-w", "%{http_version} %{http_code} %{size_download}", base+apachetest.BigPath)
				if want := fmt.Sprintf("2 200 %d", apachetest.BigSize); out != want {
					t.Errorf("%s: %q; want %q", apachetest.BigPath, out, want)
				}
				if got := fileSHA(t, filepath.Join(dir, "big")); got != bigSHA {
					t.Errorf("%s: the file differs from Apache's", apachetest.BigPath)
				}
				out = curl(nil, "-w", "\n%{http_version}", base+apachetest.SmallPath(7))
				if want := apachetest.SmallBody(7) + "\n2"; out != want {
					t.Errorf("%s: %q; want %q", apachetest.SmallPath(7), out, want)
				}
				// With a content-length from a file, and streamed from stdin
				// with none: the gateway sends Apache the body chunked.
				for _, tc := range []struct {
					stdin []byte
					args  []string
					cl    int
				}{
					{nil, []string{"--data-binary", "@" + uploadFile}, upload},
					{interop.PatternBytes(upload), []string{"-X", "POST", "-T", "-"}, -1},
				} {
					echoed := filepath.Join(dir, "echoed")
					dump := curl(tc.stdin, append(tc.args, "-H", "Content-Type: application/octet-stream", "-D", "-", "-o", echoed, base+apachetest.EchoPath)...)
					if !strings.HasPrefix(dump, "HTTP/2 200") || fileSHA(t, echoed) != interop.PatternSHA256(upload) {
						t.Errorf("echo (content-length %d): %q, the body differs from the %d bytes sent", tc.cl, firstLine(dump), upload)
					}
					checkSeen(t, func(k string) string { return dumpHeader(dump, k) }, base, "", tc.cl)
				}
				runs.Add(1)
			})
		}
	})

	t.Run("Go", func(t *testing.T) {
		for _, base := range []string{tlsURL, h2cURL} {
			t.Run(strings.SplitN(base, ":", 2)[0], func(t *testing.T) {
				var dials atomic.Int32
				var d net.Dialer
				tr := &http.Transport{
					DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
						dials.Add(1)
						return d.DialContext(ctx, network, addr)
					},
					TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
					Protocols:       new(http.Protocols),
				}
				if base == h2cURL {
					tr.Protocols.SetUnencryptedHTTP2(true)
				} else {
					tr.Protocols.SetHTTP2(true)
				}
				defer tr.CloseIdleConnections()
				c := &http.Client{Transport: tr, Timeout: 60 * time.Second}

				resp, err := c.Get(base + apachetest.BigPath)
				if err != nil {
					t.Fatal(err)
				}
				h := sha256.New()
				n, err := io.Copy(h, resp.Body)
				resp.Body.Close()
				if err != nil || resp.ProtoMajor != 2 || resp.StatusCode != 200 || n != apachetest.BigSize || hex.EncodeToString(h.Sum(nil)) != bigSHA {
					t.Errorf("%s: %s %d, %d bytes (%v); want HTTP/2.0 200 and the %d bytes of the file", apachetest.BigPath, resp.Proto, resp.StatusCode, n, err, apachetest.BigSize)
				}

				var wg sync.WaitGroup
				for i := range 40 {
					wg.Go(func() {
						resp, err := c.Get(base + apachetest.SmallPath(i))
						if err != nil {
							t.Error(err)
							return
						}
						b, err := io.ReadAll(resp.Body)
						resp.Body.Close()
						if err != nil || resp.ProtoMajor != 2 || string(b) != apachetest.SmallBody(i) {
							t.Errorf("%s: %s %q (%v); want HTTP/2.0 %q", apachetest.SmallPath(i), resp.Proto, b, err, apachetest.SmallBody(i))
						}
					})
				}
				wg.Wait()

				for _, known := range []bool{true, false} {
					var body io.Reader = bytes.NewReader(interop.PatternBytes(upload))
					cl := upload
					if !known {
						body, cl = io.MultiReader(body), -1
					}
					req, err := http.NewRequest("POST", base+apachetest.EchoPath, body)
					if err != nil {
						t.Fatal(err)
					}
					req.ContentLength = int64(cl)
					resp, err := c.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					got, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err != nil || resp.StatusCode != 200 || !bytes.Equal(got, interop.PatternBytes(upload)) {
						t.Errorf("echo (content-length %d): %d, %d bytes back (%v); want 200 and the %d sent", cl, resp.StatusCode, len(got), err, upload)
					}
					checkSeen(t, resp.Header.Get, base, "", cl)
				}
				if n := dials.Load(); n != 1 {
					t.Errorf("the client dialled %d connections; want 1", n)
				}
				runs.Add(1)
			})
		}
	})

	t.Run("node", func(t *testing.T) {
		for _, base := range []string{tlsURL, h2cURL} {
			t.Run(strings.SplitN(base, ":", 2)[0], func(t *testing.T) {
				reqs := []interop.H2Request{
					{Path: apachetest.BigPath},
					{Method: "POST", Path: apachetest.EchoPath, BodyBytes: upload, Headers: map[string]string{"content-type": "application/octet-stream"}},
					{Method: "POST", Path: apachetest.EchoPath, BodyBytes: upload, NoContentLength: true},
				}
				for i := range 40 {
					reqs = append(reqs, interop.H2Request{Path: apachetest.SmallPath(i), CaptureBody: true})
				}
				rep := interop.RunNodeH2Client(t, interop.H2Job{URL: base, Requests: reqs, TimeoutMs: 60000})
				if want := strings.SplitN(base, ":", 2)[0]; rep.Protocol != map[string]string{"https": "h2", "http": "h2c"}[want] {
					t.Errorf("session protocol %q", rep.Protocol)
				}
				if len(rep.SessionErrors) > 0 {
					t.Errorf("session errors: %q", rep.SessionErrors)
				}
				if len(rep.OpenStreams) > 0 {
					t.Logf("streams left half-closed: %q", rep.OpenStreams)
				}
				if r := rep.Results[0]; r.Status != 200 || r.BodyBytes != apachetest.BigSize || r.SHA256 != bigSHA {
					t.Errorf("%s: %d, %d bytes, %q; want 200 and the %d bytes of the file", r.Path, r.Status, r.BodyBytes, r.Error, apachetest.BigSize)
				}
				for i, cl := range []int{upload, -1} {
					r := rep.Results[1+i]
					if r.Status != 200 || r.BodyBytes != upload || r.SHA256 != interop.PatternSHA256(upload) {
						t.Errorf("echo (content-length %d): %d, %d bytes back, %q; want 200 and the %d sent", cl, r.Status, r.BodyBytes, r.Error, upload)
					}
					_, port, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(base, "https://"), "http://"), ":")
					checkSeen(t, func(k string) string { return r.Header(strings.ToLower(k)) }, base, "localhost:"+port, cl)
				}
				for i, r := range rep.Results[3:] {
					if r.Status != 200 || r.Body != apachetest.SmallBody(i) {
						t.Errorf("%s: %d %q %q; want 200 %q", r.Path, r.Status, r.Body, r.Error, apachetest.SmallBody(i))
					}
				}
				runs.Add(1)
			})
		}
	})

	// Apache saw HTTP/1.1, each request with Forwarded and X-Forwarded-*
	// naming the client, the host it asked for and the scheme it used;
	// spdymux's access log names HTTP/2. Apache logs a request once its
	// response is out, which may be after the client has it all.
	n := int(runs.Load())
	tlsPort := strconv.Itoa(port(s.addrs.tls))
	deadline := time.Now().Add(5 * time.Second)
	for {
		log := a.AccessLog()[logStart:]
		var bigs, echoes int
		var bad []string
		for line := range strings.Lines(log) {
			m := apachetest.AccessLogLine.FindStringSubmatch(strings.TrimRight(line, "\n"))
			if m == nil {
				bad = append(bad, line)
				continue
			}
			reqLine, status, length, xff, fwd, xfp, xfh := m[2], m[3], m[4], m[5], m[6], m[7], m[8]
			proto := "http"
			if strings.HasSuffix(xfh, ":"+tlsPort) {
				proto = "https"
			}
			if !strings.HasSuffix(reqLine, " HTTP/1.1") || xff != "127.0.0.1" || xfp != proto ||
				fwd != `for=127.0.0.1;host=\"`+xfh+`\";proto=`+proto {
				bad = append(bad, line)
			}
			switch {
			case reqLine == "GET "+apachetest.BigPath+" HTTP/1.1" && status == "200" && length == strconv.Itoa(apachetest.BigSize):
				bigs++
			case reqLine == "POST "+apachetest.EchoPath+" HTTP/1.1" && status == "200" && length == strconv.Itoa(upload):
				echoes++
			}
		}
		if len(bad) == 0 && bigs == n && echoes == 2*n {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("Apache logged %s %d times and the echo %d times; want %d and %d; lines without HTTP/1.1 and the forwarding fields: %q",
				apachetest.BigPath, bigs, echoes, n, 2*n, bad)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	// spdymux, too, logs a request when its handler returns, which may be
	// after the client has the whole response.
	for {
		got := countLines(s.stdout.String(), `"GET `+apachetest.BigPath+` HTTP/2.0" 200 `+strconv.Itoa(apachetest.BigSize))
		if got == n {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("spdymux logged %d HTTP/2 requests for %s; want %d:\n%s", got, apachetest.BigPath, n, tail(s.stdout.String(), 20))
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runH2Tool runs a command for at most 90 s and returns its stdout; a
// failure fails the test.
func runH2Tool(t *testing.T, stdin []byte, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %q: %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(name), args, err, tail(stdout.String(), 20), tail(stderr.String(), 20))
	}
	return stdout.String()
}

func fileSHA(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// dumpHeader returns the value of the field name in a curl header dump,
// or "".
func dumpHeader(dump, name string) string {
	for line := range strings.Lines(dump) {
		k, v, ok := strings.Cut(strings.TrimRight(line, "\r\n"), ":")
		if ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(line)
}
