package h2interop

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/spdymux/spdymux/internal/interop"
)

const nghttp2Install = "install nghttp2's client (Debian: nghttp2-client)"

// An nghttpLog is what `nghttp -v` printed, by stream.
type nghttpLog struct {
	protocol string // "The negotiated protocol: h2"; "" over cleartext
	settings map[string]int
	streams  map[uint32]*nghttpStream
	goaway   []string // GOAWAY frames received, as printed
}

// An nghttpStream is one request nghttp made and what came back.
type nghttpStream struct {
	path string
	// blocks are the header blocks received, in order: interim
	// responses, the response, trailers. Each is its fields in order.
	blocks    [][][2]string
	dataBytes int  // DATA payload bytes received
	ended     bool // a frame with END_STREAM was received
	reset     bool // RST_STREAM was received
}

var (
	nghttpFrame   = regexp.MustCompile(`^\[\s*[0-9.]+\] (send|recv) ([A-Z_]+) frame <length=(\d+), flags=0x([0-9a-f]+), stream_id=(\d+)>`)
	nghttpField   = regexp.MustCompile(`^\[\s*[0-9.]+\] recv \(stream_id=(\d+)\) ([^:]+|:[a-z]+): (.*)$`)
	nghttpSetting = regexp.MustCompile(`^\s+\[(SETTINGS_[A-Z_0-9]+)\(0x[0-9a-f]+\):(\d+)\]`)
	nghttpSent    = regexp.MustCompile(`^\s+:path: (.*)$`)
)

// parseNghttp reads the output of `nghttp -nv`.
func parseNghttp(out string) *nghttpLog {
	l := &nghttpLog{settings: map[string]int{}, streams: map[uint32]*nghttpStream{}}
	stream := func(id uint32) *nghttpStream {
		if l.streams[id] == nil {
			l.streams[id] = &nghttpStream{}
		}
		return l.streams[id]
	}
	pending := map[uint32][][2]string{} // fields of a block not yet ended
	var dir, kind string                // the frame being printed
	var id uint32
	for line := range strings.Lines(out) {
		line = strings.TrimRight(line, "\n")
		if p, ok := strings.CutPrefix(line, "The negotiated protocol: "); ok {
			l.protocol = p
			continue
		}
		if m := nghttpField.FindStringSubmatch(line); m != nil {
			n, _ := strconv.ParseUint(m[1], 10, 31)
			pending[uint32(n)] = append(pending[uint32(n)], [2]string{m[2], m[3]})
			continue
		}
		if m := nghttpFrame.FindStringSubmatch(line); m != nil {
			dir, kind = m[1], m[2]
			length, _ := strconv.Atoi(m[3])
			flags, _ := strconv.ParseUint(m[4], 16, 8)
			n, _ := strconv.ParseUint(m[5], 10, 31)
			id = uint32(n)
			if dir != "recv" {
				continue
			}
			switch kind {
			case "HEADERS":
				st := stream(id)
				st.blocks = append(st.blocks, pending[id])
				delete(pending, id)
			case "DATA":
				stream(id).dataBytes += length
			case "RST_STREAM":
				stream(id).reset = true
			case "GOAWAY":
				l.goaway = append(l.goaway, line)
			}
			if (kind == "HEADERS" || kind == "DATA") && flags&0x1 != 0 {
				stream(id).ended = true
			}
			continue
		}
		if dir == "recv" && kind == "SETTINGS" {
			if m := nghttpSetting.FindStringSubmatch(line); m != nil {
				l.settings[m[1]], _ = strconv.Atoi(m[2])
			}
		}
		if dir == "send" && kind == "HEADERS" {
			if m := nghttpSent.FindStringSubmatch(line); m != nil {
				stream(id).path = m[1]
			}
		}
	}
	return l
}

// byPath returns the stream that requested path.
func (l *nghttpLog) byPath(t *testing.T, path string) *nghttpStream {
	t.Helper()
	for _, st := range l.streams {
		if st.path == path {
			return st
		}
	}
	t.Fatalf("nghttp made no request for %s", path)
	return nil
}

// field returns the values of name in block i, or nil.
func (st *nghttpStream) field(i int, name string) []string {
	if i >= len(st.blocks) {
		return nil
	}
	var out []string
	for _, f := range st.blocks[i] {
		if f[0] == name {
			out = append(out, f[1])
		}
	}
	return out
}

// TestNghttp runs nghttp -v over h2 and h2c: many requests on one
// connection, the frames checked one by one; then bodies byte for byte.
func TestNghttp(t *testing.T) {
	bin := interop.LookTool(t, "nghttp", nghttp2Install)
	s := startServer(t)
	dir := t.TempDir()
	for _, h2c := range []bool{false, true} {
		t.Run(protocol(h2c), func(t *testing.T) {
			base := s.url(h2c)
			proto := protocol(h2c)

			// One connection, every request at once: the gated ones are
			// released only when all 30 are in their handlers.
			const gated = 30
			sz := sizes(gated, 100000)
			paths := []string{"/proto", "/trailers", "/early-hints", "/status/204", "/status/304", "/headers"}
			for i := range gated {
				paths = append(paths, fmt.Sprintf("/bytes/%d?gate=nghttp-%s&n=%d", sz[i], proto, gated))
			}
			args := []string{"-nv", "--no-dep"}
			for _, p := range paths {
				args = append(args, base+p)
			}
			out := run(t, nil, bin, args...)
			s.checkOneSession(t, proto)
			l := parseNghttp(out)
			if t.Failed() {
				t.Logf("nghttp output:\n%s", out)
			}
			wantALPN := "h2"
			if h2c {
				wantALPN = "" // prior knowledge: no negotiation to print
			}
			if l.protocol != wantALPN {
				t.Errorf("negotiated protocol %q; want %q", l.protocol, wantALPN)
			}
			if l.settings["SETTINGS_MAX_CONCURRENT_STREAMS"] != 100 || l.settings["SETTINGS_INITIAL_WINDOW_SIZE"] != 65536 {
				t.Errorf("server SETTINGS %v; want MAX_CONCURRENT_STREAMS 100, INITIAL_WINDOW_SIZE 65536", l.settings)
			}
			if len(l.goaway) != 0 {
				t.Errorf("GOAWAY from the server: %q", l.goaway)
			}
			if len(l.streams) != len(paths) {
				t.Errorf("%d streams; want %d", len(l.streams), len(paths))
			}
			for id, st := range l.streams {
				if !st.ended || st.reset {
					t.Errorf("stream %d (%s): ended %v, reset %v; want END_STREAM", id, st.path, st.ended, st.reset)
				}
			}

			status := func(st *nghttpStream, i int) string { return strings.Join(st.field(i, ":status"), ",") }
			if st := l.byPath(t, "/proto"); status(st, 0) != "200" || st.dataBytes == 0 || !slices.Equal(st.field(0, "x-stream-protocol"), []string{proto}) {
				t.Errorf("/proto: %v, %d bytes", st.blocks, st.dataBytes)
			}
			st := l.byPath(t, "/trailers")
			if len(st.blocks) != 2 || status(st, 0) != "200" || st.dataBytes != len("trailers follow\n") ||
				!slices.Equal(st.field(1, "x-trailer-one"), []string{"one"}) || !slices.Equal(st.field(1, "x-trailer-two"), []string{"two"}) {
				t.Errorf("/trailers: blocks %v, %d bytes; want a response, 16 bytes and trailers", st.blocks, st.dataBytes)
			}
			st = l.byPath(t, "/early-hints")
			if len(st.blocks) != 2 || status(st, 0) != "103" || !slices.Equal(st.field(0, "link"), []string{earlyLink}) ||
				status(st, 1) != "200" || !slices.Equal(st.field(1, "link"), []string{earlyLink, finalLink}) {
				t.Errorf("/early-hints: blocks %v; want 103 with one link, then 200 with two", st.blocks)
			}
			for _, code := range []string{"204", "304"} {
				st := l.byPath(t, "/status/"+code)
				if len(st.blocks) != 1 || status(st, 0) != code || st.dataBytes != 0 {
					t.Errorf("/status/%s: blocks %v, %d bytes; want one HEADERS with END_STREAM", code, st.blocks, st.dataBytes)
				}
			}
			st = l.byPath(t, "/headers")
			if got := st.field(0, "set-cookie"); !slices.Equal(got, cookies) {
				t.Errorf("set-cookie %q; want %q", got, cookies)
			}
			for i := range manyFields {
				if got := st.field(0, fmt.Sprintf("x-many-%03d", i)); !slices.Equal(got, []string{fmt.Sprintf("value %d of %d", i, manyFields)}) {
					t.Errorf("x-many-%03d: %q", i, got)
				}
			}
			for i := range gated {
				st := l.byPath(t, paths[6+i])
				if status(st, 0) != "200" || st.dataBytes != sz[i] || !slices.Equal(st.field(0, "content-length"), []string{strconv.Itoa(sz[i])}) {
					t.Errorf("%s: status %s, %d bytes; want 200 and %d", st.path, status(st, 0), st.dataBytes, sz[i])
				}
			}

			// The bodies themselves: nghttp without -v writes them out.
			got := run(t, nil, bin, base+"/bytes/"+strconv.Itoa(bigBody))
			if sha([]byte(got)) != patternSHA(bigBody) {
				t.Errorf("download: %d bytes; want the %d pattern bytes", len(got), bigBody)
			}
			s.checkOneSession(t, proto)
			upload := filepath.Join(dir, "upload")
			if err := os.WriteFile(upload, patternBytes(bigBody), 0o644); err != nil {
				t.Fatal(err)
			}
			got = run(t, nil, bin, "-d", upload, base+"/echo")
			if !bytes.Equal([]byte(got), patternBytes(bigBody)) {
				t.Errorf("upload: %d bytes back; want the %d sent", len(got), bigBody)
			}
			s.checkOneSession(t, proto)
		})
	}
}

// h2loadLine matches h2load's summary of requests.
var h2loadLine = regexp.MustCompile(`requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout`)

// TestH2load runs h2load over h2 and h2c: 2000 GETs and 200 uploads on 4
// and 2 connections with up to 50 and 10 streams in flight on each.
func TestH2load(t *testing.T) {
	bin := interop.LookTool(t, "h2load", nghttp2Install)
	s := startServer(t)
	upload := filepath.Join(t.TempDir(), "upload")
	if err := os.WriteFile(upload, patternBytes(64<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, h2c := range []bool{false, true} {
		t.Run(protocol(h2c), func(t *testing.T) {
			base := s.url(h2c)
			proto := protocol(h2c)
			for _, tc := range []struct {
				name        string
				args        []string
				n, conns    int
				status      string
				dataPerResp int
			}{
				{"GET", []string{"-n", "2000", "-c", "4", "-m", "50", base + "/bytes/1000"}, 2000, 4, "2000 2xx", 1000},
				{"POST", []string{"-n", "200", "-c", "2", "-m", "10", "-d", upload, base + "/echo"}, 200, 2, "200 2xx", 64 << 10},
			} {
				out := run(t, nil, bin, tc.args...)
				// h2load falls back to HTTP/1.1 when ALPN does not choose
				// h2: a figure counts only with this line.
				if !strings.Contains(out, "Application protocol: "+proto+"\n") {
					t.Errorf("%s: no \"Application protocol: %s\":\n%s", tc.name, proto, out)
				}
				m := h2loadLine.FindStringSubmatch(out)
				n := strconv.Itoa(tc.n)
				if m == nil || m[1] != n || m[2] != n || m[3] != n || m[4] != n || m[5] != "0" || m[6] != "0" || m[7] != "0" {
					t.Errorf("%s: %q; want %d succeeded, 0 failed, errored or timed out:\n%s", tc.name, m, tc.n, out)
				}
				if !strings.Contains(out, "status codes: "+tc.status+", 0 3xx, 0 4xx, 0 5xx") {
					t.Errorf("%s: status codes are not all %s:\n%s", tc.name, tc.status, out)
				}
				if want := fmt.Sprintf("(%d) data", tc.n*tc.dataPerResp); !strings.Contains(out, want) {
					t.Errorf("%s: traffic line lacks %q:\n%s", tc.name, want, out)
				}
				m2, other := s.sessionsSeen()
				if len(m2) != tc.conns || other != 0 {
					t.Errorf("%s: requests came over sessions %v and %d over none; want %d", tc.name, m2, other, tc.conns)
				}
				for _, p := range m2 {
					if p != proto {
						t.Errorf("%s: a session of protocol %s; want %s", tc.name, p, proto)
					}
				}
			}
		})
	}
}
