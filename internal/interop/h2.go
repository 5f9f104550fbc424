package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The HTTP/2 side of the package: node's built-in http2 module (node/
// h2client.js, which needs no npm package) as a client, and LookTool for
// the other HTTP/2 clients tests run (curl, nghttp, h2load).

// LookTool returns the path of the command name. A missing command skips
// the test, except when the environment variable CI is "true", where it
// fails it; install tells how to get it.
func LookTool(t testing.TB, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("interop: %s is required in CI but was not found in PATH (%s)", name, install)
		}
		t.Skipf("interop: %s not found in PATH; %s to run this test", name, install)
	}
	return p
}

// H2Request is one request of an H2Job.
type H2Request struct {
	Method  string            `json:"method,omitempty"` // default GET
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers,omitempty"`
	// BodyBytes is the request body size; byte i is i mod 251. The body is
	// written in 16 KiB writes honouring backpressure, with content-length
	// unless NoContentLength.
	BodyBytes       int  `json:"bodyBytes,omitempty"`
	NoContentLength bool `json:"noContentLength,omitempty"`
	// Trailers, when not empty, are sent in a HEADERS frame after the body.
	Trailers map[string]string `json:"trailers,omitempty"`
	// CaptureBody returns the response body as text in H2Result.Body.
	CaptureBody bool `json:"captureBody,omitempty"`
}

// H2Job is what h2client.js runs: all Requests over one HTTP/2 session.
type H2Job struct {
	// URL is "https://HOST:PORT" (h2 by ALPN, the certificate not
	// verified) or "http://HOST:PORT" (h2c with prior knowledge).
	URL        string      `json:"url"`
	ServerName string      `json:"servername,omitempty"` // SNI; default localhost
	Requests   []H2Request `json:"requests"`
	// Concurrency limits the requests in flight; 0 means all at once.
	Concurrency int `json:"concurrency,omitempty"`
	TimeoutMs   int `json:"timeoutMs"` // whole job; default 30000
}

// H2Result is the outcome of one H2Request.
type H2Result struct {
	Path    string         `json:"path"`
	Status  int            `json:"status"` // 0 when no response came
	Headers map[string]any `json:"headers"`
	// Informational are the interim (1xx) responses, in order.
	Informational []map[string]any `json:"informational"`
	Trailers      map[string]any   `json:"trailers"` // nil without trailers
	BodyBytes     int              `json:"bodyBytes"`
	SHA256        string           `json:"sha256"` // of the received body bytes
	Error         string           `json:"error"`  // "" on success
	Body          string           `json:"body"`   // only with H2Request.CaptureBody
}

// Header returns the value of the response header name (lower case),
// several values joined by ", ", or "".
func (r H2Result) Header(name string) string { return headerValue(r.Headers, name) }

// Trailer returns the value of the response trailer name, or "".
func (r H2Result) Trailer(name string) string { return headerValue(r.Trailers, name) }

// Values returns every value of the response header name.
func (r H2Result) Values(name string) []string {
	switch v := r.Headers[name].(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, len(v))
		for i, x := range v {
			out[i] = fmt.Sprint(x)
		}
		return out
	}
	return nil
}

func headerValue(m map[string]any, name string) string {
	switch v := m[name].(type) {
	case string:
		return v
	case []any:
		s := make([]string, len(v))
		for i, x := range v {
			s[i] = fmt.Sprint(x)
		}
		return strings.Join(s, ", ")
	}
	return ""
}

// H2Report is h2client.js's output for one H2Job.
type H2Report struct {
	Protocol      string   `json:"protocol"` // "h2" (ALPN) or "h2c"
	SessionErrors []string `json:"sessionErrors"`
	// OpenStreams are the streams still open 1 s after the last response
	// ended, when the session was destroyed: node's nghttp2 cannot end a
	// request stream whose window the server left at zero (see
	// h2client.js).
	OpenStreams    []string       `json:"openStreams"`
	RemoteSettings map[string]any `json:"remoteSettings"` // the server's SETTINGS, as node names them
	Results        []H2Result     `json:"results"`        // in request order
}

// RunNodeH2Client runs h2client.js on job and returns its report. A job
// that could not run at all fails the test; failed requests and session
// errors are only reported. A missing node skips the test (fails it in
// CI).
func RunNodeH2Client(t testing.TB, job H2Job) H2Report {
	t.Helper()
	nodeBin := LookTool(t, "node", "install Node.js")
	if job.TimeoutMs <= 0 {
		job.TimeoutMs = 30000
	}
	in, err := json.Marshal(job)
	if err != nil {
		t.Fatalf("interop: marshal job: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(job.TimeoutMs)*time.Millisecond+15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodeBin, filepath.Join(NodeDir(), "h2client.js"))
	cmd.Dir = NodeDir()
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	runErr := cmd.Run()
	if stderr.Len() > 0 {
		t.Logf("interop: h2client.js stderr:\n%s", stderr.String())
	}
	if runErr != nil {
		t.Fatalf("interop: h2client.js failed: %v (ctx: %v)\nstdout: %s", runErr, ctx.Err(), stdout.String())
	}
	var rep H2Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("interop: h2client.js report: %v\nstdout: %s", err, stdout.String())
	}
	if len(rep.Results) != len(job.Requests) {
		t.Fatalf("interop: h2client.js returned %d results for %d requests", len(rep.Results), len(job.Requests))
	}
	return rep
}
