package spdymux

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spdymux/spdymux/spdy"
)

// pushHandler is the inner server of the push tests.
//
//	/page?xac=V&link=V&status=N&n=N&block=1
//	                              sets X-Associated-Content V and Link V
//	                              (each repeatable), answers status N
//	                              (default 200) with "page" (or n bytes);
//	                              with block, then waits for the request's
//	                              end: records "cancelled"
//	/res/NAME                     "resource NAME\n"; records "start"
//	/named                        "named\n", with response fields Method,
//	                              Url, Host and Scheme
//	/big/N                        N pattern bytes
//	/slow/NAME?ms=N               waits N ms before the head
//	/block/NAME                   answers the head, then waits for the
//	                              request's end: records "cancelled"
func pushHandler(ts **testServer) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/page", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		for _, v := range q["xac"] {
			w.Header().Add("X-Associated-Content", v)
		}
		for _, v := range q["link"] {
			w.Header().Add("Link", v)
		}
		status := 200
		if s := q.Get("status"); s != "" {
			status, _ = strconv.Atoi(s)
		}
		body := []byte("page")
		if n, _ := strconv.Atoi(q.Get("n")); n > 0 {
			body = pattern(n)
		}
		w.WriteHeader(status)
		w.Write(body)
		if q.Get("block") != "" {
			http.NewResponseController(w).Flush()
			<-r.Context().Done()
			(*ts).record(r, "cancelled")
		}
	})
	mux.HandleFunc("/res/{name}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "resource %s\n", r.PathValue("name"))
	})
	mux.HandleFunc("/named", func(w http.ResponseWriter, r *http.Request) {
		for _, k := range []string{"Method", "Url", "Host", "Scheme"} {
			w.Header().Set(k, "response's")
		}
		w.Write([]byte("named\n"))
	})
	mux.HandleFunc("/big/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.Write(pattern(n))
	})
	mux.HandleFunc("/slow/{name}", func(w http.ResponseWriter, r *http.Request) {
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
		case <-r.Context().Done():
			(*ts).record(r, "cancelled")
			return
		}
		fmt.Fprintf(w, "slow %s\n", r.PathValue("name"))
	})
	mux.HandleFunc("/block/{name}", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("blocking\n"))
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
		(*ts).record(r, "cancelled")
	})
	mux.HandleFunc("/assoc", func(w http.ResponseWriter, r *http.Request) {
		info, _ := StreamInfoFromContext(r.Context())
		fmt.Fprintf(w, "stream %d associated %d", info.StreamID, info.AssociatedStreamID)
	})
	mux.HandleFunc("/headers", func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Clone()
		h.Set("Host", r.Host)
		h.Write(w)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*ts).record(r, "start")
		mux.ServeHTTP(w, r)
	})
}

// pushVersions lists the protocols the push tests run under: SPDY/3.1
// for SPDY/3 and 3.1, which push alike, and SPDY/2.
var pushVersions = []string{ProtoSPDY31, ProtoSPDY2}

// newPushServer starts a server with pushHandler, in handler mode with
// the -handler-mode flag.
func newPushServer(t *testing.T, proto string, cfg *Config) *testServer {
	t.Helper()
	var ts *testServer
	if *handlerMode {
		ts = newDirectServer(t, proto, cfg, pushHandler(&ts))
		return ts
	}
	ts = newTestServerWith(t, proto, cfg, func(srv *http.Server) { srv.Handler = pushHandler(&ts) })
	return ts
}

// pageURL builds /page with the given X-Associated-Content and Link
// values.
func pageURL(xac []string, links []string, extra ...string) string {
	var q []string
	for _, v := range xac {
		q = append(q, "xac="+urlEscape(v))
	}
	for _, v := range links {
		q = append(q, "link="+urlEscape(v))
	}
	q = append(q, extra...)
	return "/page?" + strings.Join(q, "&")
}

func urlEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '/' || c == '.' || c == '-' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// spdyPush is a pushed stream as the SPDY peer saw it.
type spdyPush struct {
	id, assoc spdy.StreamID
	prio      uint8
	header    map[string]string
	body      []byte
	fin       bool
	reset     bool
}

// pushPath returns the path and query of the resource a push's
// SYN_STREAM names: its :path on SPDY/3; on SPDY/2 those of its url, which
// must be the full URL (draft 2), or "" when it is not.
func pushPath(v spdy.Version, h []spdy.HeaderField) string {
	if v != spdy.V2 {
		return headerValue(h, ":path")
	}
	u, err := url.Parse(headerValue(h, "url"))
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return u.RequestURI()
}

// readPage reads the response of stream id and every push associated
// with it, until the page's FIN and the end of each push. It checks that
// every SYN_STREAM came before the page's FIN, and that its header block
// is a response's of the session's version (the status and version names,
// each name once). The pushes are keyed by pushPath.
func (p *peer) readPage(t *testing.T, id spdy.StreamID) (*response, map[string]*spdyPush) {
	t.Helper()
	page := &response{header: map[string]string{}}
	pushes := map[spdy.StreamID]*spdyPush{}
	byPath := map[string]*spdyPush{}
	pageDone := false
	open := func() bool {
		for _, ps := range pushes {
			if !ps.fin && !ps.reset {
				return true
			}
		}
		return false
	}
	for !pageDone || open() {
		f := p.expect(t, fmt.Sprintf("frames of stream %d and its pushes", id), func(f spdy.Frame) bool {
			sid := streamOf(f)
			return sid == id || pushes[sid] != nil || isType[*spdy.SynStreamFrame](f)
		})
		switch f := f.(type) {
		case *spdy.SynReplyFrame:
			for _, h := range f.Header {
				page.header[h.Name] = h.Value
			}
			page.status = page.header[":status"]
			if p.version == spdy.V2 {
				page.status = page.header["status"]
			}
			checkResponseHeader(t, p.version, id, f.Header)
			if f.Flags&spdy.FlagFin != 0 {
				page.finOnReply, pageDone = true, true
			}
		case *spdy.SynStreamFrame:
			if pageDone {
				t.Errorf("SYN_STREAM(%d) after the FIN of its associated stream %d", f.StreamID, id)
			}
			if f.AssociatedStreamID != id || f.StreamID%2 != 0 || f.Flags&spdy.FlagUnidirectional == 0 {
				t.Errorf("push SYN_STREAM: id %d, associated %d, flags %#x; want an even id, associated %d, FLAG_UNIDIRECTIONAL",
					f.StreamID, f.AssociatedStreamID, f.Flags, id)
			}
			ps := &spdyPush{id: f.StreamID, assoc: f.AssociatedStreamID, prio: f.Priority, header: map[string]string{}}
			for _, h := range f.Header {
				ps.header[h.Name] = h.Value
			}
			checkResponseHeader(t, p.version, f.StreamID, f.Header)
			ps.fin = f.Flags&spdy.FlagFin != 0
			pushes[f.StreamID] = ps
			byPath[pushPath(p.version, f.Header)] = ps
		case *spdy.DataFrame:
			if f.StreamID == id {
				page.body = append(page.body, f.Data...)
				pageDone = f.Flags&spdy.FlagFin != 0
			} else {
				ps := pushes[f.StreamID]
				ps.body = append(ps.body, f.Data...)
				ps.fin = f.Flags&spdy.FlagFin != 0
			}
		case *spdy.RstStreamFrame:
			if f.StreamID == id {
				t.Fatalf("stream %d reset: %v", id, f.Status)
			}
			pushes[f.StreamID].reset = true
		default:
			t.Fatalf("unexpected %s", describe(f))
		}
	}
	return page, byPath
}

// Both triggers push on SPDY/3, 3.1 and 2: X-Associated-Content (removed
// from the response the client sees) and Link rel=preload (kept). Each
// push is a unidirectional SYN_STREAM associated to the page, before its
// FIN, carrying the promised request's :method, :path, :host and :scheme
// and the pushed response's head, then its body. On SPDY/2 the names are
// method, url, host and scheme, url the full URL (draft 2), and status
// and version; its priority is halved to SPDY/2's 2 bits.
func TestSPDYPush(t *testing.T) {
	forEachBubble(t, versions, func(t *testing.T, proto string) {
		ts := newPushServer(t, proto, nil)
		p := ts.dial(t)
		p.send(t, p.syn(1, 2, true, p.request("GET",
			pageURL([]string{`"/res/a":1, "https://example.com/res/b"`}, []string{`</res/c>; rel=preload; as=style`, `</res/d>; rel=preload; nopush`}),
			spdy.HeaderField{Name: "user-agent", Value: "push-test"},
			spdy.HeaderField{Name: "cookie", Value: "session=42"},
			spdy.HeaderField{Name: "x-private", Value: "not copied"})))
		page, pushes := p.readPage(t, 1)
		if page.status != "200 OK" || string(page.body) != "page" {
			t.Errorf("page: %s %q", page.status, page.body)
		}
		if _, ok := page.header["x-associated-content"]; ok {
			t.Error("x-associated-content reached the client")
		}
		if page.header["link"] == "" {
			t.Error("link was removed; it is for the client too")
		}
		want := map[string]uint8{"/res/a": 1, "/res/b": 7, "/res/c": 2}
		if p.version == spdy.V2 {
			want = map[string]uint8{"/res/a": 0, "/res/b": 3, "/res/c": 2}
		}
		if len(pushes) != len(want) {
			t.Errorf("pushes %v; want %v", keys(pushes), want)
		}
		for path, prio := range want {
			ps := pushes[path]
			if ps == nil {
				t.Errorf("no push of %s", path)
				continue
			}
			name := strings.TrimPrefix(path, "/res/")
			if string(ps.body) != "resource "+name+"\n" || !ps.fin {
				t.Errorf("push %s: body %q, fin %v", path, ps.body, ps.fin)
			}
			if ps.prio != prio {
				t.Errorf("push %s: priority %d; want %d", path, ps.prio, prio)
			}
			wantHeader := map[string]string{":method": "GET", ":path": path, ":host": "example.com", ":scheme": "https",
				":status": "200 OK", ":version": "HTTP/1.1", "content-type": "text/plain"}
			if p.version == spdy.V2 {
				wantHeader = map[string]string{"method": "GET", "url": "https://example.com" + path, "host": "example.com", "scheme": "https",
					"status": "200 OK", "version": "HTTP/1.1", "content-type": "text/plain"}
			}
			for k, v := range wantHeader {
				if ps.header[k] != v {
					t.Errorf("push %s: %s %q; want %q (header %v)", path, k, ps.header[k], v, ps.header)
				}
			}
		}
		ts.waitNoStreams(t)
		if got := ts.sl.Stats().Pushes; got != 3 {
			t.Errorf("Stats.Pushes %d; want 3", got)
		}
	})
}

// On SPDY/2 a push's SYN_STREAM names its request with method, url, host
// and scheme, names a response may use too: the response's fields of
// those names are left out of it, and the pushed resource keeps its name.
func TestSPDY2PushRequestNames(t *testing.T) {
	bubble(t, func(t *testing.T) {
		ts := newPushServer(t, ProtoSPDY2, nil)
		p := ts.dial(t)
		p.get(t, 1, pageURL([]string{`"/named"`}, nil))
		_, pushes := p.readPage(t, 1) // each name once
		ps := pushes["/named"]
		if ps == nil || string(ps.body) != "named\n" {
			t.Fatalf("push /named: %+v; pushes %v", ps, keys(pushes))
		}
		for k, v := range map[string]string{"method": "GET", "url": "https://example.com/named", "host": "example.com", "scheme": "https"} {
			if ps.header[k] != v {
				t.Errorf("push /named: %s %q; want %q", k, ps.header[k], v)
			}
		}
	})
}

func keys[K comparable, V any](m map[K]V) []K {
	var ks []K
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// A pushed request is a GET of the pushed path on the page's origin, with
// the headers of the page's request that matter to the answer, and the
// page's URL as referer.
func TestPushRequestHeaders(t *testing.T) {
	forEachBubble(t, pushVersions, func(t *testing.T, proto string) {
		ts := newPushServer(t, proto, nil)
		p := ts.dial(t)
		p.send(t, p.syn(1, 0, true, p.request("GET", pageURL([]string{`"/headers"`}, nil),
			spdy.HeaderField{Name: "user-agent", Value: "push-test"},
			spdy.HeaderField{Name: "cookie", Value: "session=42"},
			spdy.HeaderField{Name: "accept-language", Value: "fr"},
			spdy.HeaderField{Name: "authorization", Value: "Basic eDp5"},
			spdy.HeaderField{Name: "x-private", Value: "not copied"})))
		_, pushes := p.readPage(t, 1)
		ps := pushes["/headers"]
		if ps == nil {
			t.Fatalf("no push of /headers: %v", keys(pushes))
		}
		got := string(ps.body)
		for _, line := range []string{"Host: example.com", "User-Agent: push-test", "Cookie: session=42", "Accept-Language: fr",
			"Authorization: Basic eDp5", "Referer: https://example.com" + pageURL([]string{`"/headers"`}, nil)} {
			if !strings.Contains(got, line+"\r\n") {
				t.Errorf("the pushed request lacks %q:\n%s", line, got)
			}
		}
		if strings.Contains(got, "X-Private") {
			t.Errorf("the pushed request has X-Private:\n%s", got)
		}
	})
}

// No push where mod_spdy and mod_http2 make none: from a pushed stream,
// for a method other than GET, for an error or a 304, off the page's
// origin, or when Config turns push off; on SPDY/2 as on SPDY/3.
// X-Associated-Content is removed all the same.
func TestNoPush(t *testing.T) {
	xac := `"/res/a", "https://other.example/res/x", "http://example.com/res/y"`
	for _, tt := range []struct {
		name   string
		cfg    *Config
		method string
		url    string
		pushes int
	}{
		{"cross-origin only pushed: none", nil, "GET", pageURL([]string{`"https://other.example/res/x", "http://example.com/res/y", "https://example.com:8443/res/z"`}, nil), 0},
		{"same origin with the default port", nil, "GET", pageURL([]string{`"https://example.com:443/res/a"`}, nil), 1},
		{"POST", nil, "POST", pageURL([]string{xac}, nil), 0},
		{"404", nil, "GET", pageURL([]string{xac}, nil, "status=404"), 0},
		{"304", nil, "GET", pageURL([]string{xac}, nil, "status=304"), 0},
		{"DisableSPDYPush", &Config{DisableSPDYPush: true}, "GET", pageURL([]string{xac}, nil), 0},
		{"pushed page does not push", nil, "GET", pageURL([]string{`"` + pageURL([]string{`"/res/deep"`}, nil) + `"`}, nil), 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			forEachBubble(t, pushVersions, func(t *testing.T, proto string) {
				ts := newPushServer(t, proto, tt.cfg)
				p := ts.dial(t)
				p.send(t, p.syn(1, 0, true, p.request(tt.method, tt.url)))
				page, pushes := p.readPage(t, 1)
				if _, ok := page.header["x-associated-content"]; ok {
					t.Error("x-associated-content reached the client")
				}
				if len(pushes) != tt.pushes {
					t.Errorf("pushes %v; want %d", keys(pushes), tt.pushes)
				}
				p.sync(t)
				if fs := p.takeAll(); len(fs) > 0 {
					t.Errorf("frames after the page: %s", describeAll(fs))
				}
			})
		})
	}
}

// The client's RST_STREAM CANCEL or REFUSED_STREAM on a push stops that
// push, and nothing else: the page and the other pushes complete, the
// session goes on, and the reset spends none of the reset budget.
func TestPushResetByClient(t *testing.T) {
	for _, code := range []spdy.RstStatus{spdy.Cancel, spdy.RefusedStream} {
		t.Run(code.String(), func(t *testing.T) {
			forEachBubble(t, pushVersions, func(t *testing.T, proto string) {
				ts := newPushServer(t, proto, &Config{ResetBurst: 1, ResetRate: 0.0001})
				p := ts.dial(t)
				p.send(t, p.syn(1, 0, true, p.request("GET", pageURL([]string{`"/block/x", "/res/a"`}, nil))))
				var blocked spdy.StreamID
				f := p.expect(t, "push SYN_STREAM of /block/x", func(f spdy.Frame) bool {
					s, ok := f.(*spdy.SynStreamFrame)
					return ok && strings.HasPrefix(pushPath(p.version, s.Header), "/block/")
				})
				blocked = f.(*spdy.SynStreamFrame).StreamID
				p.send(t, &spdy.RstStreamFrame{StreamID: blocked, Status: code})
				e := ts.waitEvent(t, "cancelled", uint32(blocked))
				if e.path != "/block/x" {
					t.Errorf("cancelled %s; want /block/x", e.path)
				}
				// The page and the other push complete.
				page, pushes := p.readPage(t, 1)
				if string(page.body) != "page" {
					t.Errorf("page body %q", page.body)
				}
				if ps := pushes["/res/a"]; ps == nil || string(ps.body) != "resource a\n" {
					t.Errorf("push /res/a: %+v", ps)
				}
				// Two more streams: the reset budget of one is intact.
				p.get(t, 3, "/res/b")
				p.readResponse(t, 3)
				ts.waitNoStreams(t)
			})
		})
	}
}

func headerValue(h []spdy.HeaderField, name string) string {
	for _, f := range h {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

// A pushed request's handler learns from StreamInfo that it serves a push,
// and of which stream.
func TestPushStreamInfo(t *testing.T) {
	forEachBubble(t, pushVersions, func(t *testing.T, proto string) {
		ts := newPushServer(t, proto, nil)
		p := ts.dial(t)
		p.get(t, 1, pageURL([]string{`"/assoc"`}, nil))
		_, pushes := p.readPage(t, 1)
		if ps := pushes["/assoc"]; ps == nil || string(ps.body) != "stream 2 associated 1" {
			t.Errorf("push /assoc: %+v", ps)
		}
		p.get(t, 3, "/assoc")
		if r := p.readResponse(t, 3); string(r.body) != "stream 3 associated 0" {
			t.Errorf("the client's own stream: %q", r.body)
		}
	})
}
