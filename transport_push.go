package spdymux

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/spdymux/spdymux/internal/httpconv"
)

// Push is a response a server pushed (SPDY/3 §3.3, SPDY/2's "Server Push
// Transactions") along with the response to one of the Transport's
// requests, offered to Transport.PushHandler once its response head has
// come. The handler takes it with Response, or refuses it with Cancel.
type Push struct {
	// Request is the promised request: a GET of the URL the server named
	// in the push's :scheme, :host and :path (SPDY/3), or in its url, the
	// full URL, or else its scheme, host and url path (SPDY/2). Its Header
	// is empty: SPDY sends none of the request the server made.
	Request *http.Request
	// Associated is the request whose response the push came with.
	Associated *http.Request

	cc      *clientConn
	st      *stream
	decode  bool // the Transport asked for gzip and deflate itself
	mu      sync.Mutex
	claimed bool // Response or Cancel was called
}

// pushOriginKey marks a request context whose stream may get pushes:
// openStream ties the request to its stream before the head goes out.
type pushOriginKey struct{}

// Response takes the push and returns its response at once: its head
// has come. Its Body reads the pushed body as it arrives and must be
// closed, as any response body's; closing it early cancels the push. A
// body in gzip or deflate is decoded, as the Associated response's, when
// the Transport asked for them.
func (p *Push) Response() (*http.Response, error) {
	p.mu.Lock()
	p.claimed = true
	p.mu.Unlock()
	reply, err := p.st.waitReply(context.Background()) // it has come: no wait
	if err != nil {
		return nil, err
	}
	resp, err := p.cc.response(p.Request, reply)
	if err != nil {
		p.cc.s.resetStream(p.st, codeProtocol)
		return nil, err
	}
	cs := &clientStream{rc: newRawConn(p.st), ctx: context.Background(), resp: resp}
	resp.Body = cs
	if p.decode {
		if ce := resp.Header.Get("Content-Encoding"); ce == "gzip" || ce == "deflate" {
			resp.Body = &decodedBody{cs: cs, coding: ce}
			resp.Header.Del("Content-Encoding")
			resp.Header.Del("Content-Length")
			resp.ContentLength = -1
			resp.Uncompressed = true
		}
	}
	return resp, nil
}

// Cancel refuses the push, or stops it if its response is under way: the
// stream is reset with CANCEL. It does nothing once the push has ended.
func (p *Push) Cancel() {
	p.mu.Lock()
	p.claimed = true
	p.mu.Unlock()
	p.cc.s.resetStream(p.st, codeCancel)
}

// onPush offers pst, a stream the server pushed whose head has come, to
// the Transport's push handler, on the session's reader; a push the
// handler neither takes nor cancels is cancelled when it returns. It
// refuses a push off the associated request's origin (the server is not
// authoritative for another: SPDY/3 §3.3.2 leaves the check to the
// client).
func (cc *clientConn) onPush(h func(*Push), pst *stream) bool {
	s := cc.s
	s.mu.Lock()
	origin := pst.push.assoc.push
	promise := pst.push.promise
	s.mu.Unlock()
	if origin == nil || origin.origin == nil {
		return false
	}
	assoc := origin.origin
	u, ok := promisedURL(s.dialect, promise)
	if !ok || !sameOrigin(assoc.URL, u) && !sameOrigin(&url.URL{Scheme: assoc.URL.Scheme, Host: assoc.Host}, u) {
		return false
	}
	req := (&http.Request{Method: http.MethodGet, URL: u, Host: u.Host, Header: make(http.Header),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}).WithContext(context.Background())
	p := &Push{Request: req, Associated: assoc, cc: cc, st: pst,
		decode: assoc.Header.Get("Accept-Encoding") == "" && !cc.noDecode}
	h(p)
	p.mu.Lock()
	claimed := p.claimed
	p.mu.Unlock()
	if !claimed {
		p.Cancel()
	}
	return true
}

// promisedURL returns the URL a pushed stream's SYN_STREAM names: SPDY/3's
// :scheme, :host and :path; on SPDY/2 its url, which draft 2 has be the
// full URL (Chromium's form), or a url path with scheme and host beside it
// (spdy-transport's server). It reports false for a path that is not
// absolute, or a full URL without a host.
func promisedURL(d httpconv.Dialect, promise []httpconv.HeaderField) (*url.URL, bool) {
	var scheme, host, path string
	names := [3]string{":scheme", ":host", ":path"}
	if d == httpconv.SPDY2 {
		names = [3]string{"scheme", "host", "url"}
	}
	for _, f := range promise {
		switch f.Name {
		case names[0]:
			scheme = f.Value
		case names[1]:
			host = f.Value
		case names[2]:
			path = f.Value
		}
	}
	if d == httpconv.SPDY2 && !strings.HasPrefix(path, "/") {
		u, err := url.Parse(path)
		if err != nil || u.Scheme == "" || u.Host == "" || u.Opaque != "" || u.User != nil {
			return nil, false
		}
		if u.Path == "" {
			u.Path = "/"
		}
		u.Fragment, u.RawFragment = "", ""
		return u, true
	}
	if path == "" || path[0] != '/' {
		return nil, false
	}
	u, err := url.Parse(scheme + "://" + host + path)
	return u, err == nil
}

// pushContext marks ctx, the context of a request whose stream may get
// pushes, for openStream.
func pushContext(ctx context.Context, req *http.Request) context.Context {
	return context.WithValue(ctx, pushOriginKey{}, req)
}
