package httpconv

import "github.com/spdymux/spdymux/spdy"

// HeaderField is one name/value pair of a header block. In the SPDY
// dialects Value may hold several values joined by single NUL bytes; in
// H2 it is one value, and a repeated name is a repeated field.
type HeaderField = spdy.HeaderField
