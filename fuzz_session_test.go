package spdymux

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/spdymux/spdymux/spdy"
)

// The session fuzz targets feed arbitrary bytes, after a valid start, to
// a server session behind a Listener in handler mode, as `spdymux serve`
// runs it, and check what the standards ask of bad input: no panic, and
// the session, its streams and its handlers all gone once the client has
// closed its end. Every parser the session drives is in the path: the
// frame layer, header-block assembly and decompression, flow control,
// the request built from a block, and the request body.

// fuzzServer is one Listener for all of a fuzz target's inputs.
type fuzzServer struct {
	ln   *pipeListener
	sl   *Listener
	pool *Pool
}

var (
	fuzzServersMu sync.Mutex
	fuzzServers   = map[string]*fuzzServer{}
)

func getFuzzServer(proto string) *fuzzServer {
	fuzzServersMu.Lock()
	defer fuzzServersMu.Unlock()
	if fs := fuzzServers[proto]; fs != nil {
		return fs
	}
	fs := &fuzzServer{ln: newPipeListener(), pool: NewPool(16)}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%s %s %d\n", r.Method, r.URL.Path, n)
	})
	cfg := &Config{
		Handler: h,
		Pool:    fs.pool,
		Logger:  slog.New(slog.DiscardHandler),
		// Small limits, so that inputs of a few KB reach them.
		InitialWindowSize: 1 << 10,
		SessionWindowSize: 4 << 10,
		MaxHeaderBytes:    2 << 10,
	}
	fs.sl = NewListener(fs.ln, cfg)
	srv := &http.Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0)}
	ConfigureServer(srv)
	go srv.Serve(fs.sl)
	fuzzServers[proto] = fs
	return fs
}

// session writes start and then data to a new session, reads whatever
// the server answers, closes its end and waits for the server to forget
// the session. With until set, it closes only once the server's bytes
// hold until (or 5 s have passed), and reports whether they did.
func (fs *fuzzServer) session(t *testing.T, start, data, until []byte) bool {
	c, s := net.Pipe()
	fs.ln.ch <- s
	read := make(chan struct{})
	seen := make(chan struct{})
	want := until
	go func() {
		defer close(read)
		var out []byte
		buf := make([]byte, 4<<10)
		for {
			n, err := c.Read(buf)
			if want != nil {
				out = append(out, buf[:n]...)
				if bytes.Contains(out, want) {
					close(seen)
					want, out = nil, nil
				}
			}
			if err != nil {
				return
			}
		}
	}()
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(start); err == nil {
		c.Write(data)
	}
	found := false
	if until != nil {
		select {
		case <-seen:
			found = true
		case <-time.After(5 * time.Second):
		}
	}
	c.Close()
	<-read
	var st Stats
	var busy, waiting int
	if !waitState(t, func() bool {
		st = fs.sl.Stats()
		busy, waiting = fs.pool.Stats()
		return st.ActiveSessions == 0 && st.ActiveStreams == 0 && busy == 0 && waiting == 0
	}, func() string {
		return fmt.Sprintf("after the client closed: %d sessions, %d streams, pool %d busy, %d waiting",
			st.ActiveSessions, st.ActiveStreams, busy, waiting)
	}) {
		t.FailNow()
	}
	return found
}

// hpackBlock encodes fields (name, value, name, value, ...) with enc.
func hpackBlock(enc *hpack.Encoder, buf *bytes.Buffer, fields ...string) []byte {
	buf.Reset()
	for i := 0; i+1 < len(fields); i += 2 {
		enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return bytes.Clone(buf.Bytes())
}

func FuzzH2Session(f *testing.F) {
	get := []string{":method", "GET", ":scheme", "https", ":authority", "localhost", ":path", "/"}
	post := []string{":method", "POST", ":scheme", "https", ":authority", "localhost", ":path", "/up", "content-length", "5"}
	// One encoder per input: its header blocks share one dynamic table,
	// as on a connection.
	seed := func(fn func(fr *http2.Framer, block func(...string) []byte)) {
		var hb bytes.Buffer
		enc := hpack.NewEncoder(&hb)
		f.Add(h2Frames(func(fr *http2.Framer) {
			fn(fr, func(fields ...string) []byte { return hpackBlock(enc, &hb, fields...) })
		}))
	}
	seed(func(fr *http2.Framer, block func(...string) []byte) {
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block(get...), EndStream: true, EndHeaders: true})
	})
	seed(func(fr *http2.Framer, block func(...string) []byte) {
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block(post...), EndHeaders: true})
		fr.WriteData(1, false, []byte("he"))
		fr.WriteWindowUpdate(0, 1000)
		fr.WriteData(1, true, []byte("llo"))
		fr.WritePing(false, [8]byte{1})
	})
	seed(func(fr *http2.Framer, block func(...string) []byte) {
		b := block(append(get, "cookie", "a=1", "cookie", "b=2", "priority", "u=0")...)
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: b[:4]})
		fr.WriteContinuation(3, false, b[4:8])
		fr.WriteContinuation(3, true, b[8:])
		fr.WriteRawFrame(0x10, 0, 0, []byte{0, 0, 0, 5, 'u', '=', '1'}) // PRIORITY_UPDATE
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 5, BlockFragment: block(post...), EndHeaders: true})
		fr.WriteRSTStream(5, http2.ErrCodeCancel)
		fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1})
		fr.WriteGoAway(0, http2.ErrCodeNo, nil)
	})
	seed(func(fr *http2.Framer, block func(...string) []byte) {
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block(post...), EndHeaders: true})
		fr.WriteData(1, false, make([]byte, 2000)) // over the stream window
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block("x-trailer", "1"), EndStream: true, EndHeaders: true})
	})
	start := append([]byte(http2.ClientPreface), h2Frames(func(fr *http2.Framer) { fr.WriteSettings() })...)
	fs := getFuzzServer(ProtoH2C)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return
		}
		fs.session(t, start, data, nil)
	})
}

func FuzzSPDYSession(f *testing.F) {
	frames := func(fn func(fr *spdy.Framer)) []byte {
		var b bytes.Buffer
		fn(spdy.NewFramer(&b, nil, spdy.V3))
		return b.Bytes()
	}
	hdr := func(method, path string) []spdy.HeaderField {
		return []spdy.HeaderField{{Name: ":method", Value: method}, {Name: ":path", Value: path}, {Name: ":version", Value: "HTTP/1.1"},
			{Name: ":host", Value: "localhost"}, {Name: ":scheme", Value: "https"}}
	}
	// One framer per input: the header blocks of an input share its
	// compression context, as on a connection.
	f.Add(frames(func(fr *spdy.Framer) {
		fr.WriteSynStream(&spdy.SynStreamFrame{StreamID: 1, Flags: spdy.FlagFin, Header: hdr("GET", "/")})
	}))
	f.Add(frames(func(fr *spdy.Framer) {
		fr.WriteSynStream(&spdy.SynStreamFrame{StreamID: 1, Header: append(hdr("POST", "/up"), spdy.HeaderField{Name: "content-length", Value: "5"})})
		fr.WriteData(1, 0, []byte("he"))
		fr.WriteWindowUpdate(0, 1000)
		fr.WriteData(1, spdy.FlagFin, []byte("llo"))
		fr.WritePing(1)
	}))
	f.Add(frames(func(fr *spdy.Framer) {
		fr.WriteSynStream(&spdy.SynStreamFrame{StreamID: 1, Priority: 7, Header: hdr("GET", "/a")})
		fr.WriteSynStream(&spdy.SynStreamFrame{StreamID: 3, Priority: 0, Flags: spdy.FlagFin, Header: hdr("GET", "/b")})
		fr.WriteRstStream(1, spdy.Cancel)
		fr.WriteSettings(0, spdy.Setting{ID: spdy.SettingInitialWindowSize, Value: 1})
		fr.WriteGoAway(0, spdy.GoAwayOK)
	}))
	// A SETTINGS frame first, so that the Listener takes the connection
	// for SPDY whatever follows.
	start := frames(func(fr *spdy.Framer) {
		fr.WriteSettings(0, spdy.Setting{ID: spdy.SettingMaxConcurrentStreams, Value: 100})
	})
	fs := getFuzzServer(ProtoSPDY31)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return
		}
		fs.session(t, start, data, nil)
	})
}

// The fuzz targets' first seeds are requests the server answers: the
// harness reaches the handler.
func TestFuzzSessionHarness(t *testing.T) {
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	h2 := h2Frames(func(fr *http2.Framer) {
		fr.WriteSettings()
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndHeaders: true, BlockFragment: hpackBlock(enc, &hb,
			":method", "POST", ":scheme", "https", ":authority", "localhost", ":path", "/up", "content-length", "5")})
		fr.WriteData(1, true, []byte("hello"))
	})
	if !getFuzzServer(ProtoH2C).session(t, []byte(http2.ClientPreface), h2, []byte("POST /up 5\n")) {
		t.Error("h2c: no answer to POST /up")
	}
	var b bytes.Buffer
	fr := spdy.NewFramer(&b, nil, spdy.V3)
	fr.WriteSynStream(&spdy.SynStreamFrame{StreamID: 1, Flags: spdy.FlagFin, Header: []spdy.HeaderField{{Name: ":method", Value: "GET"},
		{Name: ":path", Value: "/x"}, {Name: ":version", Value: "HTTP/1.1"}, {Name: ":host", Value: "localhost"}, {Name: ":scheme", Value: "https"}}})
	if !getFuzzServer(ProtoSPDY31).session(t, nil, b.Bytes(), []byte("GET /x 0\n")) {
		t.Error("spdy/3.1: no answer to GET /x")
	}
}
