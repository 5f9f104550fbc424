package httpconv

// Character classes of RFC 9110 section 5.6.2 (token), section 5.5
// (field-value) and RFC 3986 (scheme, host).
const (
	classToken = 1 << iota // tchar
	classValue             // field-vchar, SP, HTAB: bytes allowed inside a field value
	classHost              // bytes allowed in a Host header (as golang.org/x/net/http/httpguts)
)

var byteClass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		if c >= 0x20 && c != 0x7f || c == '\t' {
			t[c] |= classValue
		}
	}
	for _, c := range []byte("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
		t[c] |= classToken
	}
	for _, c := range []byte("!$%&'()*+,-.:;=[]_~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
		t[c] |= classHost
	}
	return t
}()

// validToken reports whether s is a non-empty RFC 9110 token.
func validToken[T string | []byte](s T) bool {
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

// validValue reports whether s may appear as a field value: no CR, LF, NUL
// or other control byte except HTAB.
func validValue[T string | []byte](s T) bool {
	for i := 0; i < len(s); i++ {
		if byteClass[s[i]]&classValue == 0 {
			return false
		}
	}
	return true
}

// validValues is validValue for a value holding several values joined by
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
