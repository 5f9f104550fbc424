package cli

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spdymux/spdymux"
)

// leafOf dials addr and returns the certificate the server presents.
func leafOf(t *testing.T, addr string) []byte {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Raw
}

// replaceKeyPair writes cert over certFile and keyFile.
func replaceKeyPair(t *testing.T, cert tls.Certificate, certFile, keyFile string) {
	t.Helper()
	c, k := writeKeyPair(t, cert)
	for _, p := range [][2]string{{c, certFile}, {k, keyFile}} {
		b, err := os.ReadFile(p[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p[1], b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// waitLog waits for a log record with msg in s's log.
func waitLog(t *testing.T, s *serving, msg string, n int) logRecord {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var found []logRecord
		for _, r := range logRecords(s.stderr.String()) {
			if r["msg"] == msg {
				found = append(found, r)
			}
		}
		if len(found) >= n {
			return found[n-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %d log records %q:\n%s", n, msg, s.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// SIGHUP reloads the certificate for new handshakes while open sessions
// go on; a bad pair keeps the one in use; the access log is reopened.
func TestReloadOnHUP(t *testing.T) {
	certA, err := selfSigned(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	certB, err := selfSigned(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := writeKeyPair(t, certA)
	logFile := filepath.Join(t.TempDir(), "access.log")
	hup := make(chan struct{})
	s := startServeEnv(t, hup, "-listen", "127.0.0.1:0", "-cert", certFile, "-key", keyFile, "-access-log", logFile,
		"-metrics", "127.0.0.1:0")
	addr := s.addrs.tls.String()
	base := "https://" + addr

	// A SPDY session, open across the reload.
	tr := &spdymux.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	session := func() float64 {
		t.Helper()
		code, body := get(t, client, base+"/info")
		var info struct {
			SessionID float64 `json:"session_id"`
		}
		if err := json.Unmarshal([]byte(body), &info); code != 200 || err != nil {
			t.Fatalf("/info: %d %q", code, body)
		}
		return info.SessionID
	}
	before := session()
	if !bytes.Equal(leafOf(t, addr), certA.Certificate[0]) {
		t.Fatal("the server does not present -cert")
	}

	replaceKeyPair(t, certB, certFile, keyFile)
	os.Rename(logFile, logFile+".1") // as logrotate does
	hup <- struct{}{}
	waitLog(t, s, "SIGHUP: certificate reloaded; new handshakes get it, open sessions go on", 1)
	waitLog(t, s, "SIGHUP: access log reopened", 1)
	if !bytes.Equal(leafOf(t, addr), certB.Certificate[0]) {
		t.Error("after SIGHUP, a new handshake does not get the new certificate")
	}
	if after := session(); after != before {
		t.Errorf("the session changed across SIGHUP: %v then %v; want it kept", before, after)
	}

	// A bad pair: the certificate in use stays, and the log says why.
	if err := os.WriteFile(certFile, []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hup <- struct{}{}
	r := waitLog(t, s, "SIGHUP: certificate reload failed; the certificate in use stays", 1)
	if r["level"] != "ERROR" || !strings.Contains(r["err"], "failed to find any PEM data") {
		t.Errorf("failed reload logged as %v", r)
	}
	if !bytes.Equal(leafOf(t, addr), certB.Certificate[0]) {
		t.Error("after a failed reload, the certificate changed")
	}
	session()

	m := scrape(t, s.addrs.metrics)
	if m[series("spdymux_certificate_reloads_total", "result", "success")] != 1 || m[series("spdymux_certificate_reloads_total", "result", "failure")] != 1 {
		t.Errorf("reload counters: %v success, %v failure; want 1 and 1",
			m[series("spdymux_certificate_reloads_total", "result", "success")], m[series("spdymux_certificate_reloads_total", "result", "failure")])
	}
	if got, want := m["spdymux_certificate_expiry_timestamp_seconds"], float64(certB.Leaf.NotAfter.Unix()); got != want {
		t.Errorf("certificate expiry %v; want %v", got, want)
	}

	s.shutdown(t, 5*time.Second)
	old, _ := os.ReadFile(logFile + ".1")
	cur, _ := os.ReadFile(logFile)
	if n := strings.Count(string(old), "GET /info "); n != 1 {
		t.Errorf("rotated access log has %d requests; want the one before SIGHUP:\n%s", n, old)
	}
	if n := strings.Count(string(cur), "GET /info "); n != 2 {
		t.Errorf("reopened access log has %d requests; want the two after SIGHUP:\n%s", n, cur)
	}
}

// The real signals, to the real binary: SIGHUP reloads and does not stop
// the server, SIGTERM drains and exits 0.
func TestSignals(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command")
	}
	bin := filepath.Join(t.TempDir(), "spdymux")
	// CGO_ENABLED=0 as deploy's test and the Dockerfile: one more build
	// of the dependencies, shared.
	build := exec.Command("go", "build", "-o", bin, "-ldflags", "-X github.com/spdymux/spdymux/internal/cli.version=v9.8.7", "github.com/spdymux/spdymux/cmd/spdymux")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, "-version").Output(); err != nil || !strings.HasPrefix(string(out), "spdymux v9.8.7 (") {
		t.Errorf("spdymux -version: %q, %v", out, err)
	}
	cert, err := selfSigned(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := writeKeyPair(t, cert)
	cmd := exec.Command(bin, "serve", "-listen", "127.0.0.1:0", "-listen-plain", "127.0.0.1:0", "-cert", certFile, "-key", keyFile,
		"-log-format", "json")
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	records := func() []map[string]any {
		var recs []map[string]any
		for line := range strings.Lines(stderr.String()) {
			var r map[string]any
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Errorf("log line not JSON: %q", line)
				continue
			}
			recs = append(recs, r)
		}
		return recs
	}
	waitFor := func(msg string) map[string]any {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			for _, r := range records() {
				if r["msg"] == msg {
					return r
				}
			}
		}
		t.Fatalf("no log record %q:\n%s", msg, stderr.String())
		return nil
	}
	r := waitFor("listening for cleartext")
	url, _ := r["url"].(string)
	if v := waitFor("serving the demo site"); v["version"] != "v9.8.7" {
		t.Errorf("serving record: %v; want version v9.8.7", v)
	}

	cmd.Process.Signal(syscall.SIGHUP)
	waitFor("SIGHUP: certificate reloaded; new handshakes get it, open sessions go on")
	resp, err := http.Get(url + "hello")
	if err != nil {
		t.Fatalf("after SIGHUP: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("after SIGTERM: %v; want exit 0", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no exit within 15s of SIGTERM")
	}
	waitFor("stopped")
}
