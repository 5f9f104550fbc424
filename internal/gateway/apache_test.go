package gateway

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spdymux/spdymux/internal/apachetest"
)

func patternSHA(n int) [32]byte {
	h := sha256.New()
	buf := make([]byte, 64<<10)
	for off := 0; off < n; {
		k := min(len(buf), n-off)
		for i := range k {
			buf[i] = apachetest.PatternByte(int64(off + i))
		}
		h.Write(buf[:k])
		off += k
	}
	return [32]byte(h.Sum(nil))
}

// TestApacheBehindGateway puts the gateway, over plain HTTP/1.1, in front
// of a real Apache httpd.
func TestApacheBehindGateway(t *testing.T) {
	a := apachetest.Start(t)
	g := newGateway(t, a.URL(), Config{ResponseHeaderTimeout: 500 * time.Millisecond, Logger: discard()})
	front := httptest.NewServer(g)
	defer front.Close()
	client := front.Client()

	t.Run("16 MiB static file", func(t *testing.T) {
		resp, err := client.Get(front.URL + apachetest.BigPath)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		h := sha256.New()
		n, err := io.Copy(h, resp.Body)
		if err != nil || resp.StatusCode != 200 || n != apachetest.BigSize {
			t.Fatalf("status %d, %d bytes, err %v; want 200 and %d bytes", resp.StatusCode, n, err, apachetest.BigSize)
		}
		if got := [32]byte(h.Sum(nil)); got != patternSHA(apachetest.BigSize) {
			t.Error("the body differs from the file")
		}
	})

	t.Run("concurrent small files", func(t *testing.T) {
		var wg sync.WaitGroup
		for i := range 32 {
			wg.Go(func() {
				resp, err := client.Get(front.URL + apachetest.SmallPath(i))
				if err != nil {
					t.Error(err)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(b) != apachetest.SmallBody(i) {
					t.Errorf("%s: %q; want %q", apachetest.SmallPath(i), b, apachetest.SmallBody(i))
				}
			})
		}
		wg.Wait()
	})

	t.Run("4 MiB upload through the CGI echo", func(t *testing.T) {
		upload := bytes.Repeat([]byte("spdymux "), (4<<20)/8)
		resp, err := client.Post(front.URL+apachetest.EchoPath, "application/octet-stream", bytes.NewReader(upload))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		got, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 || !bytes.Equal(got, upload) {
			t.Fatalf("status %d, %d bytes back, err %v; want 200 and the %d bytes sent", resp.StatusCode, len(got), err, len(upload))
		}
		host := strings.TrimPrefix(front.URL, "http://")
		for k, want := range map[string]string{
			"X-Seen-Forwarded":       fmt.Sprintf(`for=127.0.0.1;host="%s";proto=http`, host),
			"X-Seen-Forwarded-For":   "127.0.0.1",
			"X-Seen-Forwarded-Proto": "http",
			"X-Seen-Forwarded-Host":  host,
			"X-Seen-Content-Length":  fmt.Sprint(len(upload)),
			"X-Seen-Method":          "POST",
		} {
			if got := resp.Header.Get(k); got != want {
				t.Errorf("%s: %q; want %q", k, got, want)
			}
		}
	})

	t.Run("slow CGI gets 504", func(t *testing.T) {
		resp, err := client.Get(front.URL + apachetest.EchoPath + "?sleep=1500")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusGatewayTimeout {
			t.Errorf("status %d; want 504", resp.StatusCode)
		}
	})

	t.Run("stopped then restarted", func(t *testing.T) {
		a.Stop()
		resp, err := client.Get(front.URL + apachetest.SmallPath(1))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadGateway {
			t.Errorf("with Apache stopped: status %d %q; want 502", resp.StatusCode, b)
		}
		a.Restart()
		resp, err = client.Get(front.URL + apachetest.SmallPath(1))
		if err != nil {
			t.Fatal(err)
		}
		b, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != apachetest.SmallBody(1) {
			t.Errorf("after Restart: status %d %q; want 200 %q", resp.StatusCode, b, apachetest.SmallBody(1))
		}
	})
}
