package httpconv

import "github.com/spdymux/spdymux/spdy"

// HeaderField is one name/value pair of a SPDY header block; Value may
// hold several values joined by single NUL bytes.
type HeaderField = spdy.HeaderField
