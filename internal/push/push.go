// Package push reads the response headers by which an unmodified HTTP/1.1
// server asks for resources to be pushed to the client: mod_spdy's
// X-Associated-Content and the Link preload that Apache's mod_http2
// follows. It parses and resolves URLs; it does not decide what may be
// pushed (same origin, bounds) and does not push: that is the session's
// (push.go in the spdymux package).
//
// Both parsers are total: any input gives a list, possibly empty, never a
// panic, and they allocate only for the URLs they return. Neither keeps
// its input.
package push

import (
	"net/url"
	"strconv"
	"strings"
)

// Target is one resource a response asks to push.
type Target struct {
	// URL is absolute: scheme, host and path (with the query, if any, and
	// without a fragment), resolved against the request's URL.
	URL *url.URL
	// Priority is the SPDY priority X-Associated-Content gave, 0 (highest)
	// to 7, or -1 when none was given (and always for Link).
	Priority int
}

// Path returns the target's request target in origin form: the escaped
// path, then "?" and the query if there is one.
func (t Target) Path() string {
	p := t.URL.EscapedPath()
	if p == "" {
		p = "/"
	}
	if t.URL.RawQuery != "" {
		p += "?" + t.URL.RawQuery
	}
	return p
}

// LowestPriority is the priority of an X-Associated-Content URL without
// one, and the most a given one is clamped to: SPDY/3's lowest (mod_spdy).
const LowestPriority = 7

// ParseAssociatedContent appends to dst the URLs of one X-Associated-Content
// value, with mod_spdy's syntax and rules (server_push_filter.cc): a
// comma-separated list of double-quoted URLs, each optionally followed by
// a colon and a priority, with whitespace allowed between tokens:
//
//	"https://www.example.com/foo.css", "/bar/baz.js?x=y" : 1, "/quux.css":3
//
// A priority is a decimal number clamped to 0..7; an absent or invalid one
// is LowestPriority. A parse error (no comma between entries, no quoted
// URL) ends the list: the entries before it are kept. A URL that does not
// parse, or is neither absolute (http or https, with a host) nor an
// absolute path, is skipped, as mod_spdy skipped what apr_uri_parse
// refused; relative references, which mod_spdy left as a TODO, are
// resolved against base, the request's URL. A fragment is dropped: it is
// never part of a request (mod_spdy sent it along).
func ParseAssociatedContent(dst []Target, base *url.URL, v string) []Target {
	v = trimLeftSpace(v)
	first := true
	for v != "" {
		if !first {
			var ok bool
			if v, ok = separator(v, ','); !ok {
				return dst // "missing comma"
			}
		}
		first = false
		if v == "" || v[0] != '"' {
			return dst // "expected quoted URL"
		}
		end := strings.IndexByte(v[1:], '"')
		if end < 0 {
			return dst // no closing quote
		}
		ref := v[1 : 1+end]
		v = trimLeftSpace(v[2+end:])
		prio := LowestPriority
		if rest, ok := separator(v, ':'); ok {
			n := 0
			for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
				n++
			}
			if p, err := strconv.ParseUint(rest[:n], 10, 32); err == nil {
				prio = int(min(p, LowestPriority))
				v = trimLeftSpace(rest[n:])
			} else {
				// An invalid priority is the lowest; the text stays, and
				// the next entry's comma is looked for there.
				v = rest
			}
		}
		if u := resolve(base, ref); u != nil {
			dst = append(dst, Target{URL: u, Priority: prio})
		}
	}
	return dst
}

// ParseLink appends to dst the URLs that one Link field value (RFC 8288)
// asks to preload and lets be pushed, with mod_http2's rules (h2_push.c):
// a link whose rel parameter lists the relation type "preload" and that
// has no "nopush" parameter. Links are read in order until one does not
// parse; parameter names and relation types match without regard to case
// (RFC 8288 §3.3, §2.1.1; mod_http2 matched rel's value exactly). The
// reference is resolved against base, the request's URL (RFC 8288 §3.2:
// the link context is the request's target); one that does not parse, or
// whose scheme is not http or https, is skipped. Priority is -1.
func ParseLink(dst []Target, base *url.URL, v string) []Target {
	for {
		v = trimLeftOWS(v)
		if v == "" || v[0] != '<' {
			return dst
		}
		end := strings.IndexByte(v, '>')
		if end < 0 {
			return dst
		}
		ref := v[1:end]
		v = v[end+1:]
		preload, nopush := false, false
		for {
			rest := trimLeftOWS(v)
			if rest == "" || rest[0] != ';' {
				break
			}
			name, value, after, ok := param(rest[1:])
			if !ok {
				v = rest[1:]
				break
			}
			v = after
			switch {
			case strings.EqualFold(name, "rel"):
				preload = preload || hasToken(value, "preload")
			case strings.EqualFold(name, "nopush"):
				nopush = true
			}
		}
		if preload && !nopush {
			if u := resolve(base, ref); u != nil {
				dst = append(dst, Target{URL: u, Priority: -1})
			}
		}
		v = trimLeftOWS(v)
		if v == "" || v[0] != ',' {
			return dst
		}
		v = v[1:]
	}
}

// param reads one link-param after its ';': a name of attr-chars, then
// optionally "=" and a token or quoted string (RFC 8288 §3, RFC 8187).
func param(s string) (name, value, rest string, ok bool) {
	s = trimLeftOWS(s)
	n := 0
	for n < len(s) && attrChar(s[n]) {
		n++
	}
	if n == 0 {
		return "", "", s, false
	}
	name, s = s[:n], s[n:]
	t := trimLeftOWS(s)
	if t == "" || t[0] != '=' {
		return name, "", s, true
	}
	t = trimLeftOWS(t[1:])
	if t != "" && t[0] == '"' {
		end := strings.IndexByte(t[1:], '"')
		if end < 0 {
			return name, "", "", true
		}
		return name, t[1 : 1+end], t[2+end:], true
	}
	n = 0
	for n < len(t) && t[n] != ';' && t[n] != ',' && t[n] != ' ' && t[n] != '\t' {
		n++
	}
	return name, t[:n], t[n:], true
}

// hasToken reports whether the space-separated list v holds tok, without
// regard to case.
func hasToken(v, tok string) bool {
	for f := range strings.FieldsSeq(v) {
		if strings.EqualFold(f, tok) {
			return true
		}
	}
	return false
}

func attrChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$&+-.^_`|~", c) >= 0
}

// resolve returns ref resolved against base, or nil if it does not parse,
// is not http or https, has no host, or is a path that is not absolute
// once resolved (only a base without a path leaves one so).
func resolve(base *url.URL, ref string) *url.URL {
	if ref == "" || strings.ContainsAny(ref, " \t\r\n\x00") {
		return nil
	}
	r, err := url.Parse(ref)
	if err != nil || r.Opaque != "" {
		return nil
	}
	u := base.ResolveReference(r)
	u.Fragment, u.RawFragment = "", ""
	u.User = nil
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || !strings.HasPrefix(u.EscapedPath()+"/", "/") {
		return nil
	}
	return u
}

// separator skips whitespace, then c and the whitespace after it.
func separator(s string, c byte) (string, bool) {
	s = trimLeftSpace(s)
	if s == "" || s[0] != c {
		return s, false
	}
	return trimLeftSpace(s[1:]), true
}

// trimLeftSpace drops the whitespace mod_spdy skipped: " \n\r\t".
func trimLeftSpace(s string) string { return strings.TrimLeft(s, " \n\r\t") }

// trimLeftOWS drops optional whitespace (RFC 9110 §5.6.3).
func trimLeftOWS(s string) string { return strings.TrimLeft(s, " \t") }
