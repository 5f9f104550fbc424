package httpconv

import "strconv"

// Dialect is the protocol whose header blocks are converted: the SPDY
// major version (SPDY/3.1 is SPDY3), or HTTP/2. The values of SPDY2 and
// SPDY3 are the SPDY wire versions, so Dialect(v) converts an
// spdy.Version.
type Dialect int

const (
	SPDY2 Dialect = 2 // SPDY/2: "method", "url", "status"; NUL-joined values
	SPDY3 Dialect = 3 // SPDY/3 and 3.1: ":method", ":host", ":status"; NUL-joined values
	H2    Dialect = 4 // HTTP/2, RFC 9113: ":authority"; one field per value
)

func (d Dialect) String() string {
	switch d {
	case SPDY2:
		return "SPDY/2"
	case SPDY3:
		return "SPDY/3"
	case H2:
		return "HTTP/2"
	}
	return "UNKNOWN_DIALECT_" + strconv.Itoa(int(d))
}

// mustBeValid panics for a Dialect that is none of the constants: a
// caller's bug, not peer input.
func (d Dialect) mustBeValid() {
	if d != SPDY2 && d != SPDY3 && d != H2 {
		panic("httpconv: unknown dialect " + d.String())
	}
}

// MalformedError reports an HTTP/2 message that RFC 9113 section 8.1.1
// calls malformed. It MUST be treated as a stream error of type
// PROTOCOL_ERROR: the caller resets the stream with RST_STREAM
// PROTOCOL_ERROR rather than answering it. It is returned only for the H2
// dialect, except by ResponseFromFields, which uses it for every dialect.
type MalformedError struct {
	Reason string // what was wrong, lower case
}

func (e *MalformedError) Error() string { return "httpconv: malformed message: " + e.Reason }

func malformed(reason string) *MalformedError { return &MalformedError{Reason: reason} }
