package httpconv

import (
	"fmt"
	"net/http"
	"strconv"
)

// Character classes of RFC 9110 section 5.6.2 (token), section 5.5
// (field-value) and RFC 3986 (scheme, host).
const (
	classToken      = 1 << iota // tchar
	classLowerToken             // tchar but "A" to "Z": an HTTP/2 field name byte (RFC 9113 section 8.2.1)
	classValue                  // field-vchar, SP, HTAB: bytes allowed inside a field value
	classHost                   // bytes allowed in a Host header (as golang.org/x/net/http/httpguts)
)

var byteClass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		if c >= 0x20 && c != 0x7f || c == '\t' {
			t[c] |= classValue
		}
	}
	for _, c := range []byte("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
		t[c] |= classToken
		if c < 'A' || c > 'Z' {
			t[c] |= classLowerToken
		}
	}
	for _, c := range []byte("!$%&'()*+,-.:;=[]_~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
		t[c] |= classHost
	}
	return t
}()

// ValidToken reports whether s is a non-empty RFC 9110 token (section
// 5.6.2): a valid field name or method. It is the one name check of this
// package, for requests received and sent alike.
func ValidToken[T string | []byte](s T) bool {
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if byteClass[s[i]]&classToken == 0 {
			return false
		}
	}
	return true
}

// ValidFieldValue reports whether s may appear as a field value (RFC 9110
// section 5.5): no CR, LF, NUL or other control byte except HTAB. Bytes of
// 0x80 and above (obs-text) are allowed. It is the one value check of this
// package, for requests received and sent alike; HTTP/2 adds the rule on
// surrounding whitespace (validH2Value).
func ValidFieldValue[T string | []byte](s T) bool {
	for i := 0; i < len(s); i++ {
		if byteClass[s[i]]&classValue == 0 {
			return false
		}
	}
	return true
}

// CheckHeader returns an error for the first name in h that is not a
// token or value that is not a field value, as ValidToken and
// ValidFieldValue define them; it checks names as they are, in any case.
// A client calls it before it sends a request.
func CheckHeader(h http.Header) error {
	for k, vs := range h {
		if !ValidToken(k) {
			return fmt.Errorf("httpconv: invalid header name %q", k)
		}
		for _, v := range vs {
			if !ValidFieldValue(v) {
				return fmt.Errorf("httpconv: invalid value for header %q", k)
			}
		}
	}
	return nil
}

// validH2Name reports whether s is a regular HTTP/2 field name: a token
// without uppercase letters (RFC 9113 section 8.2.1).
func validH2Name(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if byteClass[s[i]]&classLowerToken == 0 {
			return false
		}
	}
	return true
}

// h2NameError explains why validH2Name rejected name.
func h2NameError(name string) *MalformedError {
	if ValidToken(name) {
		// RFC 9113 section 8.2.1: a field name MUST NOT contain uppercase
		// characters.
		return malformed("uppercase in field name " + strconv.Quote(name))
	}
	return malformed("invalid field name " + strconv.Quote(name))
}

// validH2Value reports whether s is a valid HTTP/2 field value: a field
// value (RFC 9110 section 5.5) that neither starts nor ends with SP or HTAB
// (RFC 9113 section 8.2.1).
func validH2Value(s string) bool {
	if n := len(s); n > 0 && (isSpace(s[0]) || isSpace(s[n-1])) {
		return false
	}
	return ValidFieldValue(s)
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' }

// validValues is ValidFieldValue for a value holding several values joined by
// NUL bytes.
func validValues(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != 0 && byteClass[c]&classValue == 0 {
			return false
		}
	}
	return true
}

// validHost reports whether s is a non-empty Host value made of RFC 3986
// reg-name, IP-literal and port bytes. Bytes of 0x80 and above are allowed
// for internationalized names sent unencoded.
func validHost(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x80 && byteClass[c]&classHost == 0 {
			return false
		}
	}
	return true
}

// validScheme reports whether s matches RFC 3986 section 3.1:
// ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
func validScheme(s string) bool {
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isAlpha(c) && !('0' <= c && c <= '9') && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// validPath reports whether s is an origin-form request target (RFC 9112
// section 3.2.1) that HTTP/1.1 servers accept: it starts with "/", has no
// space or control byte, and every "%" before the query is followed by two
// hex digits.
func validPath(s string) bool {
	if s == "" || s[0] != '/' {
		return false
	}
	inQuery := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c <= ' ' || c == 0x7f:
			return false
		case c == '?':
			inQuery = true
		case c == '%' && !inQuery:
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return false
			}
		}
	}
	return true
}

func isAlpha(c byte) bool { return 'a' <= c|0x20 && c|0x20 <= 'z' }

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c|0x20 && c|0x20 <= 'f' }

// equalFoldASCII reports whether a and b are equal under ASCII case folding.
func equalFoldASCII[T string | []byte](a T, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lowerASCII(a[i]) != lowerASCII(b[i]) {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
