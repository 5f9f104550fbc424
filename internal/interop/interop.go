// Package interop drives independent implementations against servers
// under test: node's spdy-transport for SPDY, node's built-in http2 module
// for HTTP/2. It is imported only by tests.
//
// The node side lives in the node/ folder next to this file: client.js (a
// SPDY client that runs one JSON job over one session and reports JSON),
// server.js (a SPDY server with a few fixed endpoints, used to validate the
// client and as a comparison server in benchmarks) and h2client.js (the
// same kind of client for HTTP/2, on node's own http2 module, run by
// RunNodeH2Client). The SPDY side's dependencies are pinned in
// node/package-lock.json and installed with `npm ci`; h2client.js needs
// none.
package interop

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// NodeDir returns the absolute path of internal/interop/node.
func NodeDir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		panic("interop: cannot locate source file")
	}
	return filepath.Join(filepath.Dir(file), "node")
}

var (
	ensureMu  sync.Mutex
	ensureErr error
	ensured   bool
)

// EnsureNode makes sure node is available and node_modules is installed,
// running `npm ci` once if it is missing or out of date, and returns the
// path of the node binary. A missing node binary skips the test, except
// when the environment variable CI is "true", where it fails it.
func EnsureNode(t testing.TB) string {
	t.Helper()
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("interop: node is required in CI but was not found in PATH: %v", err)
		}
		t.Skipf("interop: node not found in PATH (%v); install Node.js to run the SPDY interop tests", err)
	}
	ensureMu.Lock()
	defer ensureMu.Unlock()
	if !ensured {
		ensureErr = installNodeModules(t)
		ensured = true
	}
	if ensureErr != nil {
		t.Fatalf("interop: %v", ensureErr)
	}
	return nodeBin
}

// modulesInstalled reports whether node_modules matches package-lock.json:
// npm ci writes node_modules/.package-lock.json, which is compared to the
// pinned spdy-transport version and must not be older than the lock.
func modulesInstalled(dir string) bool {
	lock, err := os.Stat(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return false
	}
	hidden, err := os.Stat(filepath.Join(dir, "node_modules", ".package-lock.json"))
	if err != nil || hidden.ModTime().Before(lock.ModTime()) {
		return false
	}
	var pkg struct {
		Version string `json:"version"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "node_modules", "spdy-transport", "package.json"))
	if err != nil || json.Unmarshal(b, &pkg) != nil {
		return false
	}
	var want struct {
		Packages map[string]struct {
			Version string `json:"version"`
		} `json:"packages"`
	}
	b, err = os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil || json.Unmarshal(b, &want) != nil {
		return false
	}
	return pkg.Version != "" && pkg.Version == want.Packages["node_modules/spdy-transport"].Version
}

func installNodeModules(t testing.TB) error {
	dir := NodeDir()
	if modulesInstalled(dir) {
		return nil
	}
	// Test binaries of several packages may get here at once: serialise
	// npm ci across processes with a lock file.
	sum := sha256.Sum256([]byte(dir))
	lockPath := filepath.Join(os.TempDir(), "spdymux-interop-npm-"+hex.EncodeToString(sum[:6])+".lock")
	lf, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("npm ci lock: %v", err)
	}
	defer lf.Close()
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("npm ci lock: %v", err)
	}
	defer syscall.Flock(int(lf.Fd()), syscall.LOCK_UN)
	if modulesInstalled(dir) {
		return nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return fmt.Errorf("node_modules is missing in %s and npm was not found: %v", dir, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("npm ci in %s: %v\n%s", dir, err, out)
	}
	t.Logf("interop: npm ci in %s done", dir)
	if !modulesInstalled(dir) {
		return fmt.Errorf("npm ci in %s did not install the pinned spdy-transport", dir)
	}
	return nil
}

// Request is one request of a Job.
type Request struct {
	Method  string            `json:"method,omitempty"` // default GET
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers,omitempty"`
	// Priority is the SPDY priority, 0 (highest) to 7, sent in SYN_STREAM.
	// SPDY/2 has only 2 bits: spdy-transport still writes priority<<5, so a
	// SPDY/2 peer sees priority>>1, plus a stray bit 5 for odd values.
	Priority int `json:"priority"`
	// BodyBytes is the request body size; byte i is i mod 251. The body is
	// written in 16 KiB writes honouring backpressure. Ignored for GET.
	BodyBytes int `json:"bodyBytes,omitempty"`
	// ResetAfterBytes, when > 0, makes the client send RST_STREAM (CANCEL)
	// once it has received that many response body bytes.
	ResetAfterBytes int `json:"resetAfterBytes,omitempty"`
	// CaptureBody returns the response body as text in Result.Body.
	CaptureBody bool `json:"captureBody,omitempty"`
	// RefusePushes makes the client abort (RST_STREAM) every push
	// promised with this request's response.
	RefusePushes bool `json:"refusePushes,omitempty"`
}

// Job is what client.js runs: all Requests over one SPDY session.
type Job struct {
	Host       string    `json:"host"` // default 127.0.0.1
	Port       int       `json:"port"`
	TLS        bool      `json:"tls"`        // TLS with ALPN [Protocol]; else plain TCP
	Protocol   string    `json:"protocol"`   // spdy/3.1, spdy/3 or spdy/2
	ServerName string    `json:"servername"` // SNI and default :host; default localhost
	Requests   []Request `json:"requests"`
	Ping       bool      `json:"ping"`      // send one PING and report its round trip
	TimeoutMs  int       `json:"timeoutMs"` // whole job; default 30000
	// Concurrency limits the requests in flight; 0 means all at once.
	Concurrency int `json:"concurrency,omitempty"`
	// WindowSize is the client's receive window for each stream and, for
	// spdy/3.1, for the session; 0 means 1 MiB.
	WindowSize int `json:"windowSize,omitempty"`
}

// Result is the outcome of one Request.
type Result struct {
	Path      string         `json:"path"`
	Status    int            `json:"status"` // 0 when no reply came
	Headers   map[string]any `json:"headers"`
	BodyBytes int            `json:"bodyBytes"` // received body bytes
	SHA256    string         `json:"sha256"`    // of the received body bytes
	Error     string         `json:"error"`     // "" on success
	Reset     bool           `json:"reset"`     // the client reset the stream (ResetAfterBytes)
	Body      string         `json:"body"`      // only with Request.CaptureBody
	// Trailers are the fields of a HEADERS frame after the response, if
	// one came.
	Trailers map[string]any `json:"trailers"`
	// Pushes are the pushes promised with the response, as
	// spdy-transport's 'pushPromise' events gave them.
	Pushes []Push `json:"pushes"`
}

// Push is one push spdy-transport reported on a request's stream. Its
// Path is the promised :path; on spdy/2 the url as the server sent it
// (spdymux sends the full URL there).
type Push struct {
	ID        int            `json:"id"`
	Path      string         `json:"path"`
	Host      string         `json:"host"`
	Method    string         `json:"method"`
	Status    int            `json:"status"`
	Headers   map[string]any `json:"headers"`
	BodyBytes int            `json:"bodyBytes"`
	SHA256    string         `json:"sha256"`
	Body      string         `json:"body"`
	Error     string         `json:"error"`
	// BeforeEnd reports that the push was promised before the end of the
	// associated response.
	BeforeEnd bool `json:"beforeEnd"`
}

// Header returns the first value of the response header name, or "".
func (r Result) Header(name string) string {
	switch v := r.Headers[name].(type) {
	case string:
		return v
	case []any:
		if len(v) > 0 {
			s, _ := v[0].(string)
			return s
		}
	}
	return ""
}

// Report is client.js's output for one Job.
type Report struct {
	Results       []Result `json:"results"` // in request order
	PingMs        *float64 `json:"pingMs"`
	Protocol      string   `json:"protocol"` // negotiated by ALPN, or the plain protocol
	SessionErrors []string `json:"sessionErrors"`
	// Settings are the values of the SETTINGS frames the server sent.
	Settings map[string]int64 `json:"settings"`
}

// RunNodeClient runs client.js on job and returns its report. A job that
// could not run at all (client.js exiting non-zero, or no report) fails the
// test; failed requests and session errors are only reported.
func RunNodeClient(t testing.TB, job Job) Report {
	t.Helper()
	nodeBin := EnsureNode(t)
	if job.TimeoutMs <= 0 {
		job.TimeoutMs = 30000
	}
	in, err := json.Marshal(job)
	if err != nil {
		t.Fatalf("interop: marshal job: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(job.TimeoutMs)*time.Millisecond+15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodeBin, filepath.Join(NodeDir(), "client.js"))
	cmd.Dir = NodeDir()
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	runErr := cmd.Run()
	if stderr.Len() > 0 {
		t.Logf("interop: client.js stderr:\n%s", stderr.String())
	}
	if runErr != nil {
		t.Fatalf("interop: client.js failed: %v (ctx: %v)\nstdout: %s", runErr, ctx.Err(), stdout.String())
	}
	var rep Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("interop: client.js report: %v\nstdout: %s", err, stdout.String())
	}
	if len(rep.Results) != len(job.Requests) {
		t.Fatalf("interop: client.js returned %d results for %d requests", len(rep.Results), len(job.Requests))
	}
	return rep
}

// StartNodeServer starts server.js on 127.0.0.1 with a free port and
// returns the port; the server is stopped at t.Cleanup. With tls it serves
// TLS with ALPN protocol (or spdy/3.1, spdy/3 and spdy/2 when protocol is
// ""), using certFile and keyFile (or a throwaway certificate made with
// openssl when both are ""). Without tls it serves plain SPDY of protocol,
// or detects the version from the first frame when protocol is "".
func StartNodeServer(t testing.TB, tls bool, protocol string, certFile, keyFile string) (port int) {
	t.Helper()
	nodeBin := EnsureNode(t)
	args := []string{filepath.Join(NodeDir(), "server.js"), "--port", "0"}
	if tls {
		args = append(args, "--tls")
		if certFile != "" || keyFile != "" {
			args = append(args, "--cert", certFile, "--key", keyFile)
		}
	} else {
		args = append(args, "--plain")
	}
	if protocol != "" {
		args = append(args, "--protocol", protocol)
	}
	cmd := exec.Command(nodeBin, args...)
	cmd.Dir = NodeDir()
	stdin, err := cmd.StdinPipe() // server.js exits when this pipe closes
	if err != nil {
		t.Fatalf("interop: %v", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("interop: %v", err)
	}
	stderr := &SyncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("interop: start server.js: %v", err)
	}
	waitDone := make(chan struct{})
	var waitErr error
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() {
		waitErr = cmd.Wait()
		close(waitDone)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		stdin.Close()
		select {
		case <-waitDone:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-waitDone
		}
		if s := stderr.String(); s != "" {
			t.Logf("interop: server.js stderr:\n%s", s)
		}
	})

	timer := time.NewTimer(20 * time.Second)
	defer timer.Stop()
	for {
		select {
		case line := <-lines:
			if p, ok := strings.CutPrefix(line, "listening "); ok {
				port, err := strconv.Atoi(strings.TrimSpace(p))
				if err != nil {
					t.Fatalf("interop: server.js: bad line %q", line)
				}
				return port
			}
			t.Logf("interop: server.js: %s", line)
		case <-waitDone:
			t.Fatalf("interop: server.js exited before listening: %v\n%s", waitErr, stderr.String())
		case <-timer.C:
			t.Fatalf("interop: server.js did not report its port within 20s\n%s", stderr.String())
		}
	}
}

// SyncBuffer is a bytes.Buffer for concurrent writers, such as a server's
// log, and a reader.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *SyncBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *SyncBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// PatternBytes returns n bytes where byte i is i mod 251: the bodies that
// client.js uploads and server.js's /bytes/N serves.
func PatternBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

var (
	shaMu    sync.Mutex
	shaCache = map[int]string{}
)

// PatternSHA256 returns the hex SHA-256 of PatternBytes(n).
func PatternSHA256(n int) string {
	shaMu.Lock()
	defer shaMu.Unlock()
	if s, ok := shaCache[n]; ok {
		return s
	}
	sum := sha256.Sum256(PatternBytes(n))
	s := hex.EncodeToString(sum[:])
	shaCache[n] = s
	return s
}

// WriteSelfSignedCert writes a fresh self-signed ECDSA P-256 certificate
// for "localhost" and 127.0.0.1, and its key, as PEM files into dir.
func WriteSelfSignedCert(t testing.TB, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("interop: key: %v", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatalf("interop: serial: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "localhost"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(48 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("interop: certificate: %v", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("interop: key: %v", err)
	}
	certFile = filepath.Join(dir, "cert.pem")
	keyFile = filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatalf("interop: %v", err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatalf("interop: %v", err)
	}
	return certFile, keyFile
}
