package httpconv

import "net/url"

// ParseRequestURI fills *u as url.ParseRequestURI(s) would, and returns
// its error. The common request target, a path of characters that need
// no escaping with an optional query, is split here without allocating,
// so that u can live in a larger object (handler mode's exchange); any
// other target goes to net/url.
func ParseRequestURI(u *url.URL, s string) error {
	if setSimpleRequestURI(u, s) {
		return nil
	}
	p, err := url.ParseRequestURI(s)
	if err != nil {
		return err
	}
	*u = *p
	return nil
}

// setSimpleRequestURI sets *u from s when s is "/" followed by path
// characters net/url leaves as they are (no escapes, so that Path is s's
// path and RawPath empty), then optionally "?" and a query of printable
// ASCII without "#". It reports whether it did.
func setSimpleRequestURI(u *url.URL, s string) bool {
	if len(s) == 0 || s[0] != '/' {
		return false
	}
	q := -1
	for i := 1; i < len(s); i++ {
		c := s[i]
		if c == '?' {
			q = i
			break
		}
		if !plainPathByte[c] {
			return false
		}
	}
	if q < 0 {
		*u = url.URL{Path: s}
		return true
	}
	for i := q + 1; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '#' {
			return false
		}
	}
	// net/url keeps a lone trailing "?" as ForceQuery.
	*u = url.URL{Path: s[:q], RawQuery: s[q+1:], ForceQuery: q == len(s)-1}
	return true
}

// plainPathByte lists the bytes a path may hold that net/url neither
// unescapes nor escapes in a path (url.shouldEscape with encodePath is
// false for them): letters, digits, "-_.~" and "$&+,/:;=@".
var plainPathByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-_.~$&+,/:;=@" {
		t[c] = true
	}
	return t
}()
