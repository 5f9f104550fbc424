package apachetest

import (
	"bytes"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestApache(t *testing.T) {
	a := Start(t)
	get := func(path string) (*http.Response, []byte) {
		t.Helper()
		resp, err := http.Get(a.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}

	if _, body := get(SmallPath(3)); string(body) != SmallBody(3) {
		t.Errorf("%s: %q; want %q", SmallPath(3), body, SmallBody(3))
	}
	resp, body := get(BigPath)
	if resp.StatusCode != 200 || len(body) != BigSize {
		t.Fatalf("%s: status %d, %d bytes; want 200, %d", BigPath, resp.StatusCode, len(body), BigSize)
	}
	for _, i := range []int{0, 250, 251, 1 << 20, BigSize - 1} {
		if body[i] != PatternByte(int64(i)) {
			t.Fatalf("%s: byte %d = %d; want %d", BigPath, i, body[i], PatternByte(int64(i)))
		}
	}

	upload := bytes.Repeat([]byte("0123456789"), 1000)
	req, _ := http.NewRequest("POST", a.URL()+EchoPath, bytes.NewReader(upload))
	req.Header.Set("X-Forwarded-For", "192.0.2.1")
	req.Header.Set("Forwarded", `for=192.0.2.1;host="example.com";proto=https`)
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("X-Forwarded-Host", "example.com")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	echoed, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(echoed, upload) {
		t.Errorf("echo: %d bytes back; want the %d sent", len(echoed), len(upload))
	}
	if got := resp.Header.Get("X-Seen-Forwarded-For"); got != "192.0.2.1" {
		t.Errorf("X-Seen-Forwarded-For %q; want 192.0.2.1", got)
	}
	if got := resp.Header.Get("X-Seen-Remote-Addr"); got != "127.0.0.1" {
		t.Errorf("X-Seen-Remote-Addr %q; want 127.0.0.1", got)
	}

	a.Stop()
	if _, err := http.Get(a.URL() + SmallPath(0)); err == nil {
		t.Error("a stopped server answered")
	}
	a.Restart()
	if _, body := get(SmallPath(1)); string(body) != SmallBody(1) {
		t.Errorf("after Restart: %q; want %q", body, SmallBody(1))
	}
	log := a.AccessLog()
	if !strings.Contains(log, `"192.0.2.1"`) {
		t.Errorf("access log does not show the forwarded address:\n%s", log)
	}
	found := false
	for line := range strings.Lines(log) {
		m := AccessLogLine.FindStringSubmatch(strings.TrimRight(line, "\n"))
		if m == nil {
			t.Errorf("access log line %q does not match AccessLogLine", line)
			continue
		}
		if m[2] != "POST "+EchoPath+" HTTP/1.1" {
			continue
		}
		found = true
		want := []string{"192.0.2.1", `for=192.0.2.1;host=\"example.com\";proto=https`, "https", "example.com", "+"}
		if got := []string{m[5], m[6], m[7], m[8], m[9]}; !slices.Equal(got, want) {
			t.Errorf("the echo's log line: forwarded fields and connection status %q; want %q", got, want)
		}
	}
	if !found {
		t.Errorf("access log lacks the echo:\n%s", log)
	}
}
