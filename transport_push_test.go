package spdymux_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/spdymux/spdymux"
)

// pushSite answers /page with X-Associated-Content for two resources and a
// Link preload for a third, and /res/NAME with "resource NAME".
func pushSite() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/page", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Associated-Content", `"/res/a", "/res/b":1`)
		w.Header().Add("Link", "</res/c>; rel=preload; as=style")
		io.WriteString(w, "<html>page</html>")
	})
	mux.HandleFunc("/res/{name}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "resource %s", r.PathValue("name"))
	})
	return mux
}

// The Transport hands pushed responses to its PushHandler with the request
// they came with; their bodies are read as any response's. On SPDY/2 as on
// SPDY/3: the promised request's fields do not show among the pushed
// response's headers.
func TestTransportPushHandler(t *testing.T) {
	for _, proto := range []string{spdymux.ProtoSPDY31, spdymux.ProtoSPDY3, spdymux.ProtoSPDY2} {
		t.Run(proto, func(t *testing.T) {
			url, l := serveHandler(t, proto, spdymux.Config{}, pushSite())
			var mu sync.Mutex
			got := map[string]string{}
			var wg sync.WaitGroup
			var page *http.Request
			pageDone := false
			tr := &spdymux.Transport{PlainProtocol: proto, PushHandler: func(p *spdymux.Push) {
				if p.Associated != page {
					t.Errorf("push %s: Associated is %v; want the page's request", p.Request.URL, p.Associated)
				}
				mu.Lock()
				if pageDone {
					t.Errorf("push %s offered after the page's body ended", p.Request.URL)
				}
				mu.Unlock()
				resp, err := p.Response()
				if err != nil {
					t.Errorf("push %s: %v", p.Request.URL, err)
					return
				}
				if p.Request.URL.String() != url+p.Request.URL.Path || p.Request.Method != "GET" {
					t.Errorf("push %s %s: want a GET on %s", p.Request.Method, p.Request.URL, url)
				}
				for _, k := range []string{"Method", "Url", "Path", "Host", "Scheme", "Version"} {
					if v := resp.Header.Get(k); v != "" {
						t.Errorf("push %s: response header %s: %q", p.Request.URL, k, v)
					}
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					b, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					mu.Lock()
					got[p.Request.URL.Path] = fmt.Sprintf("%d %s %v", resp.StatusCode, b, err)
					mu.Unlock()
				}()
			}}
			defer tr.CloseIdleConnections()
			page, _ = http.NewRequest("GET", url+"/page", nil)
			resp, err := tr.RoundTrip(page)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			mu.Lock()
			pageDone = true
			mu.Unlock()
			resp.Body.Close()
			if string(b) != "<html>page</html>" || resp.Header.Get("X-Associated-Content") != "" {
				t.Errorf("page %q, header %v", b, resp.Header)
			}
			wg.Wait()
			want := map[string]string{"/res/a": "200 resource a <nil>", "/res/b": "200 resource b <nil>", "/res/c": "200 resource c <nil>"}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("push %s: %q; want %q", k, got[k], v)
				}
			}
			if n := l.Stats().Pushes; n != 3 {
				t.Errorf("server Stats.Pushes %d; want 3", n)
			}
		})
	}
}

// A push the handler neither takes nor cancels is cancelled when it
// returns; the page and the session are not affected. Every push is
// offered before the end of the page's body.
func TestTransportPushIgnored(t *testing.T) {
	url, _ := serveHandler(t, spdymux.ProtoSPDY31, spdymux.Config{}, pushSite())
	var mu sync.Mutex
	var seen []string
	tr := &spdymux.Transport{PushHandler: func(p *spdymux.Push) {
		mu.Lock()
		seen = append(seen, p.Request.URL.Path)
		mu.Unlock()
	}}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	for range 2 {
		resp, body := get(t, c, context.Background(), url+"/page")
		if resp.StatusCode != 200 || string(body) != "<html>page</html>" {
			t.Fatalf("page: %d %q", resp.StatusCode, body)
		}
	}
	mu.Lock()
	sort.Strings(seen)
	mu.Unlock()
	// Pushed once per session: the second page pushes nothing.
	if strings.Join(seen, " ") != "/res/a /res/b /res/c" {
		t.Errorf("pushes offered %v; want /res/a /res/b /res/c once", seen)
	}
}

// Without a PushHandler the Transport tells the server it takes no push
// (SETTINGS_MAX_CONCURRENT_STREAMS 0): a spdymux server makes none.
func TestTransportNoPushHandler(t *testing.T) {
	url, l := serveHandler(t, spdymux.ProtoSPDY31, spdymux.Config{}, pushSite())
	tr := &spdymux.Transport{}
	defer tr.CloseIdleConnections()
	resp, body := get(t, &http.Client{Transport: tr}, context.Background(), url+"/page")
	if resp.StatusCode != 200 || string(body) != "<html>page</html>" {
		t.Fatalf("page: %d %q", resp.StatusCode, body)
	}
	if n := l.Stats().Pushes; n != 0 {
		t.Errorf("server Stats.Pushes %d; want 0", n)
	}
}
