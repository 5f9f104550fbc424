package h2interop

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/spdymux/spdymux"
	"github.com/spdymux/spdymux/internal/interop"
)

// pushServer serves, over h2c with push on (Config.EnableH2Push), a page
// that asks for three pushes: two by X-Associated-Content (one of them
// 200000 pattern bytes), one by Link.
func pushServer(t *testing.T) (url string, l *spdymux.Listener) {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/page", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Associated-Content", `"/res/a.css", "/bytes/200000":6`)
		w.Header().Set("Link", "</res/b.js>; rel=preload; as=script")
		io.WriteString(w, "<html>the page</html>\n")
	})
	mux.HandleFunc("/res/{name}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "resource %s\n", r.PathValue("name"))
	})
	mux.HandleFunc("/bytes/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		writePattern(w, n, false)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l = spdymux.NewListener(ln, &spdymux.Config{EnableH2Push: true, Logger: slog.New(slog.DiscardHandler)})
	srv := &http.Server{Handler: mux}
	spdymux.ConfigureServer(srv)
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String(), l
}

var (
	nghttpPromise  = regexp.MustCompile(`^\[\s*[0-9.]+\] recv PUSH_PROMISE frame <length=\d+, flags=0x[0-9a-f]+, stream_id=(\d+)>`)
	nghttpPromised = regexp.MustCompile(`^\s+\(padlen=\d+, promised_stream_id=(\d+)\)`)
)

// nghttpPush is a push as `nghttp -v` printed it.
type nghttpPush struct {
	assoc, id uint32
	fields    [][2]string // the promised request
	path      string
	// index of the PUSH_PROMISE among the frames received on the
	// associated stream, and of the associated stream's END_STREAM
	order, endOrder int
}

// parsePushes reads the PUSH_PROMISE frames of `nghttp -v` output (the
// fields nghttp prints before a frame line belong to that frame), and
// counts the frames of each associated stream.
func parsePushes(out string) []*nghttpPush {
	var pushes []*nghttpPush
	pending := map[uint32][][2]string{}
	frames := map[uint32]int{} // frames received per stream
	var last *nghttpPush
	for line := range strings.Lines(out) {
		line = strings.TrimRight(line, "\n")
		if m := nghttpField.FindStringSubmatch(line); m != nil {
			n, _ := strconv.ParseUint(m[1], 10, 31)
			pending[uint32(n)] = append(pending[uint32(n)], [2]string{m[2], m[3]})
			continue
		}
		if m := nghttpPromise.FindStringSubmatch(line); m != nil {
			n, _ := strconv.ParseUint(m[1], 10, 31)
			id := uint32(n)
			last = &nghttpPush{assoc: id, fields: pending[id], order: frames[id]}
			for _, f := range last.fields {
				if f[0] == ":path" {
					last.path = f[1]
				}
			}
			delete(pending, id)
			frames[id]++
			pushes = append(pushes, last)
			continue
		}
		if m := nghttpPromised.FindStringSubmatch(line); m != nil && last != nil && last.id == 0 {
			n, _ := strconv.ParseUint(m[1], 10, 31)
			last.id = uint32(n)
			continue
		}
		if m := nghttpFrame.FindStringSubmatch(line); m != nil && m[1] == "recv" {
			n, _ := strconv.ParseUint(m[5], 10, 31)
			id := uint32(n)
			if m[2] == "HEADERS" {
				delete(pending, id)
			}
			flags, _ := strconv.ParseUint(m[4], 16, 8)
			if (m[2] == "HEADERS" || m[2] == "DATA") && flags&1 != 0 {
				for _, p := range pushes {
					if p.assoc == id {
						p.endOrder = frames[id]
					}
				}
			}
			frames[id]++
		}
	}
	return pushes
}

// nghttp, which nobody here wrote, takes spdymux's HTTP/2 pushes: a
// PUSH_PROMISE on the page's stream for each, before the page's
// END_STREAM, promising an even stream with the promised request (GET,
// the page's scheme and authority, the pushed path, and the page's
// headers that a push copies), then the pushed response whole on that
// stream; the bodies nghttp writes out are the right ones.
func TestNghttpPush(t *testing.T) {
	bin := interop.LookTool(t, "nghttp", nghttp2Install)
	base, l := pushServer(t)
	out := run(t, nil, bin, "-nv", "-H", "accept-language: fr", base+"/page")
	pushes := parsePushes(out)
	log := parseNghttp(out)
	if t.Failed() || len(pushes) != 3 {
		t.Logf("nghttp output:\n%s", out)
	}
	want := map[string]int{"/res/a.css": len("resource a.css\n"), "/res/b.js": len("resource b.js\n"), "/bytes/200000": 200000}
	if len(pushes) != len(want) {
		t.Fatalf("%d PUSH_PROMISE frames; want %d", len(pushes), len(want))
	}
	page := log.streams[pushes[0].assoc]
	for _, p := range pushes {
		n, ok := want[p.path]
		if !ok {
			t.Errorf("unexpected push of %q", p.path)
			continue
		}
		field := func(name string) string {
			for _, f := range p.fields {
				if f[0] == name {
					return f[1]
				}
			}
			return ""
		}
		if p.id%2 != 0 || p.id == 0 || field(":method") != "GET" || field(":scheme") != "http" ||
			field(":authority") != strings.TrimPrefix(base, "http://") || field("accept-language") != "fr" || field("referer") != base+"/page" {
			t.Errorf("push %s: promised stream %d, request %v", p.path, p.id, p.fields)
		}
		if p.endOrder <= p.order {
			t.Errorf("push %s: PUSH_PROMISE was frame %d of the page, its END_STREAM frame %d", p.path, p.order, p.endOrder)
		}
		st := log.streams[p.id]
		if st == nil || len(st.blocks) != 1 || st.field(0, ":status")[0] != "200" || st.dataBytes != n || !st.ended || st.reset {
			t.Errorf("pushed stream %d (%s): %+v; want 200 and %d bytes, ended", p.id, p.path, st, n)
		}
	}
	if page == nil || !page.ended || page.dataBytes != len("<html>the page</html>\n") {
		t.Errorf("page stream: %+v", page)
	}
	if n := l.Stats().Pushes; n != 3 {
		t.Errorf("Stats.Pushes %d; want 3", n)
	}

	// The bodies nghttp writes, each DATA frame as it comes: the page's
	// and the small pushes' (one frame each) among the big push's frames,
	// which left alone must be its body.
	body := run(t, nil, bin, base+"/page")
	rest := body
	for _, part := range []string{"<html>the page</html>\n", "resource a.css\n", "resource b.js\n"} {
		if !strings.Contains(rest, part) {
			t.Errorf("nghttp's output lacks %q", part)
		}
		rest = strings.Replace(rest, part, "", 1)
	}
	if rest != string(patternBytes(200000)) {
		t.Errorf("nghttp wrote %d bytes besides the page and the small pushes; want the 200000-byte pushed body", len(rest))
	}

	// --no-push (SETTINGS_ENABLE_PUSH 0): no PUSH_PROMISE.
	out = run(t, nil, bin, "-nv", "--no-push", base+"/page")
	if strings.Contains(out, "PUSH_PROMISE") {
		t.Errorf("PUSH_PROMISE to a client that said SETTINGS_ENABLE_PUSH 0:\n%s", out)
	}
}
