package gateway

import (
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spdymux/spdymux"
	"github.com/spdymux/spdymux/internal/apachetest"
	"github.com/spdymux/spdymux/internal/interop"
)

// A real Apache httpd behind the gateway asks for pushes the way mod_spdy
// and mod_http2 taught pages to, from CGI scripts: X-Associated-Content
// and Link rel=preload. spdymux pushes them over SPDY/3.1 (on by default)
// and HTTP/2 (EnableH2Push), each pushed request going to Apache through
// the gateway like the client's own; the client never sees
// X-Associated-Content, and nopush is honoured.
func TestApachePushThroughGateway(t *testing.T) {
	a := apachetest.Start(t)
	g := newGateway(t, a.URL(), Config{Logger: discard()})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sl := spdymux.NewListener(ln, &spdymux.Config{EnableH2Push: true, Logger: discard()})
	front := &http.Server{Handler: g}
	spdymux.ConfigureServer(front)
	go front.Serve(sl)
	defer front.Close()
	base := "http://" + ln.Addr().String()

	cases := []struct {
		page   string
		pushed []int // SmallPath indexes
	}{
		{apachetest.PushXACPath, []int{0, 1}},
		{apachetest.PushLinkPath, []int{2}},
	}

	t.Run("spdy/3.1", func(t *testing.T) {
		var mu sync.Mutex
		got := map[string]string{}
		var wg sync.WaitGroup
		tr := &spdymux.Transport{PushHandler: func(p *spdymux.Push) {
			resp, err := p.Response()
			if err != nil {
				t.Errorf("push %s: %v", p.Request.URL, err)
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				mu.Lock()
				got[p.Request.URL.Path] = string(b)
				mu.Unlock()
			}()
		}}
		defer tr.CloseIdleConnections()
		for _, c := range cases {
			resp, err := (&http.Client{Transport: tr}).Get(base + c.page)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != apachetest.PushPageBody {
				t.Errorf("%s: %d %q", c.page, resp.StatusCode, b)
			}
			if v := resp.Header.Get("X-Associated-Content"); v != "" {
				t.Errorf("%s: the client got X-Associated-Content %q", c.page, v)
			}
		}
		wg.Wait()
		want := map[string]string{}
		for _, c := range cases {
			for _, i := range c.pushed {
				want[apachetest.SmallPath(i)] = apachetest.SmallBody(i)
			}
		}
		if len(got) != len(want) {
			t.Errorf("pushes %v; want %v", got, want)
		}
		for p, body := range want {
			if got[p] != body {
				t.Errorf("push %s: %q; want %q", p, got[p], body)
			}
		}
	})

	t.Run("h2c", func(t *testing.T) {
		bin := interop.LookTool(t, "nghttp", "install nghttp2's client (Debian: nghttp2-client)")
		for _, c := range cases {
			out, err := exec.Command(bin, base+c.page).Output()
			if err != nil {
				t.Fatalf("nghttp %s: %v", c.page, err)
			}
			want := apachetest.PushPageBody
			for _, i := range c.pushed {
				want += apachetest.SmallBody(i)
			}
			// nghttp writes each DATA frame as it comes: page and pushes
			// are one frame each here, in any order.
			if len(out) != len(want) || !strings.Contains(string(out), apachetest.PushPageBody) {
				t.Errorf("nghttp %s wrote %q; want the page and the pushes %v", c.page, out, c.pushed)
			}
			for _, i := range c.pushed {
				if !strings.Contains(string(out), apachetest.SmallBody(i)) {
					t.Errorf("nghttp %s: no push of %s", c.page, apachetest.SmallPath(i))
				}
			}
		}
	})

	// Every pushed request reached Apache, through the gateway.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && !strings.Contains(a.AccessLog(), "GET "+apachetest.SmallPath(2)+" ") {
		time.Sleep(10 * time.Millisecond)
	}
	for _, i := range []int{0, 1, 2} {
		if !strings.Contains(a.AccessLog(), "GET "+apachetest.SmallPath(i)+" HTTP/1.1") {
			t.Errorf("Apache's access log has no request for %s", apachetest.SmallPath(i))
		}
	}
	if strings.Contains(a.AccessLog(), apachetest.SmallPath(3)) {
		t.Errorf("%s was pushed despite nopush", apachetest.SmallPath(3))
	}
}
