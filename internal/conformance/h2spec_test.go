package conformance

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"go/build"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spdymux/spdymux"
	"github.com/spdymux/spdymux/internal/gateway"
)

// h2specCases is the number of cases h2spec v2.2.1 runs in strict mode
// (-S): 145, and one more that only -S adds.
const h2specCases = 146

// h2specTimeout bounds one h2spec run. A server that passes every case
// takes a few seconds; each case it fails by not answering costs h2spec's
// own per-case timeout (2 s).
const h2specTimeout = 5 * time.Minute

// A transport is how h2spec reaches a server: over TLS, h2 chosen by ALPN
// (h2spec -t -k, the certificate being self-signed), or over cleartext
// TCP with prior knowledge (h2c).
type transport struct {
	name string
	tls  bool
}

var transports = []transport{{name: "tls", tls: true}, {name: "h2c", tls: false}}

// A startFunc starts a server for h2spec on a loopback port, over TLS with
// a self-signed certificate when tr.tls and over cleartext otherwise, and
// returns its address; it stops the server with t.Cleanup. The server
// must answer GET / and POST / with 200 and a body (see hello).
type startFunc func(t *testing.T, tr transport) (addr string)

// A target is one server under test.
type target struct {
	name  string
	start startFunc
	// reference marks a server that is not spdymux, there to compare
	// with: it runs only when H2SPEC_REFERENCE=1, and its failures are
	// logged, not errors.
	reference bool
}

var targets = []target{
	// The library in process: an unmodified http.Server on
	// spdymux.NewListener.
	{name: "spdymux", start: startSpdymux},
	// The same in handler mode (Config.Handler): no secondary connection.
	{name: "spdymux-handler", start: startSpdymuxHandler},
	// `spdymux serve -backend URL`, in process, in front of a net/http
	// HTTP/1.1 server.
	{name: "gateway", start: startGateway},
	// Go's own HTTP/2 server (net/http), for comparison.
	{name: "nethttp", start: startNetHTTP, reference: true},
}

// TestH2spec runs h2spec in strict mode against every target over TLS and
// over h2c. A spdymux target that does not speak h2 on a transport is
// skipped; one that does must pass every case. The runs go in parallel:
// h2spec spends most of a run waiting for answers and timeouts, not
// computing.
func TestH2spec(t *testing.T) {
	bin := findH2spec(t)
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			if tg.reference && os.Getenv("H2SPEC_REFERENCE") != "1" {
				t.Skip("reference target (Go's net/http HTTP/2 server, not spdymux): set H2SPEC_REFERENCE=1 to run it")
			}
			t.Parallel()
			for _, tr := range transports {
				t.Run(tr.name, func(t *testing.T) {
					t.Parallel()
					addr := tg.start(t, tr)
					if err := speaksH2(addr, tr); err != nil {
						if tg.reference {
							t.Fatalf("the reference server does not speak h2 over %s: %v", tr.name, err)
						}
						t.Skipf("spdymux does not speak h2 yet (over %s: %v)", tr.name, err)
					}
					if !tg.reference {
						checkViaSpdymux(t, addr, tr)
					}
					rep := runH2spec(t, bin, addr, tr)
					rep.check(t, tg.reference)
				})
			}
		})
	}
}

// findH2spec returns the path of the h2spec binary: in PATH, else in
// $(go env GOPATH)/bin. Without one it skips the test, or fails it when
// the environment variable CI is "true".
func findH2spec(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("h2spec"); err == nil {
		return p
	}
	for _, dir := range gopaths() {
		p := filepath.Join(dir, "bin", "h2spec")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	const install = "go install github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible"
	if os.Getenv("CI") == "true" {
		t.Fatalf("h2spec is required in CI but is neither in PATH nor in GOPATH/bin; install it with: %s", install)
	}
	t.Skipf("h2spec not found in PATH or GOPATH/bin; install it with: %s", install)
	return ""
}

// gopaths returns the GOPATH entries, as `go env GOPATH` tells them (it
// knows the default and `go env -w`), else as go/build guesses them.
func gopaths() []string {
	gopath := build.Default.GOPATH
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		if s := strings.TrimSpace(string(out)); s != "" {
			gopath = s
		}
	}
	return filepath.SplitList(gopath)
}

// speaksH2 returns nil if the server at addr speaks HTTP/2 over tr: under
// TLS, if ALPN chooses h2 for a client offering h2 and http/1.1; over
// cleartext, if the client connection preface is answered with a SETTINGS
// frame (RFC 9113 §3.4). Otherwise it says what happened instead.
func speaksH2(addr string, tr transport) error {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if tr.tls {
		c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{
			InsecureSkipVerify: true,
			NextProtos:         []string{"h2", "http/1.1"},
		})
		if err != nil {
			return fmt.Errorf("TLS handshake offering h2: %w", err)
		}
		defer c.Close()
		if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
			return fmt.Errorf("ALPN chose %q, not h2", p)
		}
		return nil
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	// The client connection preface: the magic, then an empty SETTINGS
	// frame (length 0, type 0x4, no flags, stream 0).
	const preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + "\x00\x00\x00" + "\x04" + "\x00" + "\x00\x00\x00\x00"
	if _, err := io.WriteString(c, preface); err != nil {
		return fmt.Errorf("writing the client preface: %w", err)
	}
	var h [9]byte
	if n, err := io.ReadFull(c, h[:]); err != nil {
		return fmt.Errorf("after the client preface, read %q and then %v", h[:n], err)
	}
	// The server's preface is a SETTINGS frame without ACK on stream 0.
	if h[3] != 0x4 || h[4]&0x1 != 0 || binary.BigEndian.Uint32(h[5:])&(1<<31-1) != 0 {
		return fmt.Errorf("the client preface was answered with %q, not a SETTINGS frame", h[:])
	}
	return nil
}

// handlerProtoHeader is the response header in which the handler tells
// the protocol of the stream spdymux gave it, or "none" for a request
// that did not come from spdymux.
const handlerProtoHeader = "X-Handler-Proto"

// hello answers every request with 200 and a short body, after reading
// the request body: h2spec needs GET / and POST / answered so.
func hello(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "hello\n")
}

// tagProto sets handlerProtoHeader, then calls h.
func tagProto(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto := "none"
		if info, ok := spdymux.StreamInfoFromContext(r.Context()); ok {
			proto = info.Protocol
		}
		w.Header().Set(handlerProtoHeader, proto)
		h.ServeHTTP(w, r)
	})
}

// checkViaSpdymux fetches GET / from addr over HTTP/2 and checks that the
// handler got it from a spdymux stream (a secondary connection or handler
// mode): h2 on the wire must be spdymux's own, not net/http's HTTP/2
// server (which the targets turn off).
func checkViaSpdymux(t *testing.T, addr string, tr transport) {
	t.Helper()
	var protos http.Protocols
	scheme := "http"
	if tr.tls {
		protos.SetHTTP2(true)
		scheme = "https"
	} else {
		protos.SetUnencryptedHTTP2(true)
	}
	ht := &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		Protocols:       &protos,
	}
	defer ht.CloseIdleConnections()
	client := &http.Client{Transport: ht, Timeout: 10 * time.Second}
	resp, err := client.Get(scheme + "://" + addr + "/")
	if err != nil {
		t.Fatalf("h2 is negotiated, but GET / over it failed: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("h2 is negotiated, but reading the body of GET / failed: %v", err)
	}
	got := resp.Header.Get(handlerProtoHeader)
	if want := map[bool]string{true: spdymux.ProtoH2, false: spdymux.ProtoH2C}[tr.tls]; resp.ProtoMajor != 2 || resp.StatusCode != http.StatusOK || got != want {
		t.Fatalf("GET / over h2: got %s %d, stream protocol %q, body %q; want HTTP/2.0 200 from a handler given an %s stream by spdymux",
			resp.Proto, resp.StatusCode, got, body, want)
	}
}

// startSpdymux serves hello on spdymux's listener in process.
func startSpdymux(t *testing.T, tr transport) string {
	return serveSpdymux(t, tr, tagProto(http.HandlerFunc(hello)), false)
}

func startSpdymuxHandler(t *testing.T, tr transport) string {
	return serveSpdymux(t, tr, tagProto(http.HandlerFunc(hello)), true)
}

// startGateway serves, in process, what `spdymux serve -backend URL`
// serves: a gateway.Gateway on spdymux's listener in handler mode, in
// front of a net/http HTTP/1.1 server on loopback answering hello.
func startGateway(t *testing.T, tr transport) string {
	backend := httptest.NewUnstartedServer(http.HandlerFunc(hello))
	backend.Config.ErrorLog = log.New(io.Discard, "", 0)
	backend.Start() // HTTP/1.1 only
	t.Cleanup(backend.Close)
	u, err := gateway.ParseBackend(backend.URL)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(gateway.Config{
		Backend:       u,
		PipelineDepth: gateway.DefaultPipelineDepth,
		Secure:        func(*http.Request) bool { return tr.tls },
		Logger:        quietLogger,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.CloseIdleConnections)
	return serveSpdymux(t, tr, tagProto(g), true)
}

// quietLogger drops what the servers log: h2spec's bad frames make
// every one of them complain. To see one case's exchange, run
// `h2spec -v ID` against `spdymux serve`.
var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// serveSpdymux serves h on a spdymux.Listener on a loopback port, over TLS
// with a self-signed certificate or over cleartext, as `spdymux serve`
// does. The http.Server serves HTTP/1 only, so that HTTP/2 can only come
// from spdymux itself. With direct, h is also Config.Handler (handler
// mode).
func serveSpdymux(t *testing.T, tr transport, h http.Handler, direct bool) string {
	t.Helper()
	cfg := &spdymux.Config{Logger: quietLogger}
	if direct {
		cfg.Handler = h
	}
	if tr.tls {
		cfg.TLSConfig = &tls.Config{
			Certificates: []tls.Certificate{selfSigned(t)},
			MinVersion:   tls.VersionTLS12,
		}
	}
	sl := spdymux.NewListener(listenLoopback(t), cfg)
	var protos http.Protocols
	protos.SetHTTP1(true)
	srv := &http.Server{
		Handler:           h,
		Protocols:         &protos,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	spdymux.ConfigureServer(srv)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sl) }()
	t.Cleanup(func() {
		sl.Close()
		srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			t.Errorf("serving: %v", err)
		}
	})
	return sl.Addr().String()
}

// startNetHTTP serves hello with Go's net/http HTTP/2 server: over TLS as
// httptest's EnableHTTP2 server, over cleartext with unencrypted HTTP/2
// (prior knowledge) turned on.
func startNetHTTP(t *testing.T, tr transport) string {
	ts := httptest.NewUnstartedServer(tagProto(http.HandlerFunc(hello)))
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	if tr.tls {
		ts.EnableHTTP2 = true
		ts.StartTLS()
	} else {
		var protos http.Protocols
		protos.SetHTTP1(true)
		protos.SetUnencryptedHTTP2(true)
		ts.Config.Protocols = &protos
		ts.Start()
	}
	t.Cleanup(ts.Close)
	return ts.Listener.Addr().String()
}

func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// selfSigned returns a certificate for 127.0.0.1 and localhost, made once.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	cert, err := makeCert()
	if err != nil {
		t.Fatalf("making a self-signed certificate: %v", err)
	}
	return cert
}

var makeCert = sync.OnceValues(func() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "spdymux conformance test"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
})

// runH2spec runs every h2spec case, strict ones included, against addr
// over tr and returns the JUnit report it wrote.
func runH2spec(t *testing.T, bin, addr string, tr transport) *h2specReport {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	reportPath := filepath.Join(t.TempDir(), "report.xml")
	args := []string{"-h", host, "-p", port, "-S", "-j", reportPath}
	if tr.tls {
		args = append(args, "-t", "-k")
	}
	ctx, cancel := context.WithTimeout(t.Context(), h2specTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	out, runErr := cmd.CombinedOutput() // exit status 1 when a case fails
	elapsed := time.Since(start)
	data, err := os.ReadFile(reportPath)
	if err != nil {
		t.Fatalf("h2spec %s wrote no report (%v; %v) after %v; its output ends:\n%s",
			strings.Join(args, " "), runErr, err, elapsed.Round(time.Millisecond), tail(out, 4000))
	}
	rep, err := parseJUnit(data)
	if err != nil {
		t.Fatalf("h2spec's report: %v", err)
	}
	rep.transport = tr.name
	rep.elapsed = elapsed
	return rep
}

// tail returns the last n bytes of b at most.
func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// h2specReport is the outcome of one h2spec run.
type h2specReport struct {
	transport string
	elapsed   time.Duration
	cases     []h2specCase
}

// h2specCase is one case's outcome.
type h2specCase struct {
	id      string // as `h2spec ID` takes it, such as http2/5.1.1/2
	desc    string
	outcome string // "passed", "failed" or "skipped"
	message string // for "failed": what h2spec expected and got
}

// The part of h2spec's JUnit report that parseJUnit reads. Cases carry no
// number: h2spec numbers them by their order within their group (suite),
// from 1.
type junitReport struct {
	Suites []struct {
		Package string `xml:"package,attr"`
		Cases   []struct {
			ClassName string     `xml:"classname,attr"`
			Failure   *junitText `xml:"failure"`
			Error     *junitText `xml:"error"`
			Skipped   *junitText `xml:"skipped"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// junitText keeps an element's content raw: h2spec writes its messages
// into the report without escaping them.
type junitText struct {
	Raw string `xml:",innerxml"`
}

// parseJUnit reads h2spec's JUnit report.
func parseJUnit(data []byte) (*h2specReport, error) {
	var jr junitReport
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = false // messages are not escaped; tolerate a stray & or <
	if err := d.Decode(&jr); err != nil {
		return nil, fmt.Errorf("parsing JUnit XML: %w", err)
	}
	rep := &h2specReport{}
	for _, s := range jr.Suites {
		for i, c := range s.Cases {
			hc := h2specCase{
				id:      s.Package + "/" + strconv.Itoa(i+1),
				desc:    c.ClassName,
				outcome: "passed",
			}
			switch {
			case c.Failure != nil:
				hc.outcome, hc.message = "failed", c.Failure.Raw
			case c.Error != nil:
				hc.outcome, hc.message = "failed", c.Error.Raw
			case c.Skipped != nil:
				hc.outcome, hc.message = "skipped", c.Skipped.Raw
			}
			hc.message = describe(hc.message)
			rep.cases = append(rep.cases, hc)
		}
	}
	return rep, nil
}

// describe turns h2spec's message for a failed case into one line. h2spec
// writes each acceptable outcome on a line of its own and then what it
// got (sometimes labelled "Expect:" and "Actual:"); a message of one line,
// such as a timeout, stays as it is.
func describe(msg string) string {
	var lines []string
	for l := range strings.Lines(msg) {
		if l = strings.Join(strings.Fields(l), " "); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > 0 && lines[0] == "Expect:" {
		lines = lines[1:]
	}
	if len(lines) < 2 {
		return strings.Join(lines, " ")
	}
	want, got := lines[:len(lines)-1], lines[len(lines)-1:]
	if i := slices.Index(lines, "Actual:"); i >= 0 {
		want, got = lines[:i], lines[i+1:]
	}
	return "expected " + strings.Join(want, " or ") + "; got " + strings.Join(got, " ")
}

// check reports the run: every case that did not pass, with its id and
// h2spec's message, and the count of passed cases, which must be
// h2specCases. For a reference target it only logs.
func (r *h2specReport) check(t *testing.T, reference bool) {
	t.Helper()
	report := t.Errorf
	if reference {
		report = t.Logf
	}
	passed := 0
	var notPassed []string
	for _, c := range r.cases {
		if c.outcome == "passed" {
			passed++
			continue
		}
		notPassed = append(notPassed, c.id)
		report("h2spec %s %s: %s: %s", c.id, c.outcome, c.desc, c.message)
	}
	summary := fmt.Sprintf("h2spec -S over %s: %d of %d cases passed in %v",
		r.transport, passed, len(r.cases), r.elapsed.Round(100*time.Millisecond))
	if len(notPassed) > 0 {
		summary += "; not passed: " + strings.Join(notPassed, " ")
	}
	t.Log(summary)
	if len(r.cases) != h2specCases {
		report("h2spec ran %d cases; want %d (is it v2.2.1, run with -S?)", len(r.cases), h2specCases)
	}
	if passed != h2specCases {
		report("h2spec: %d cases passed; want all %d", passed, h2specCases)
	}
}
