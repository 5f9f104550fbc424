package apachetest

import (
	"bytes"
	"io"
	"net/http"
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
	if log := a.AccessLog(); !strings.Contains(log, `"192.0.2.1"`) {
		t.Errorf("access log does not show the forwarded address:\n%s", log)
	}
}
