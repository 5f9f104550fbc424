// Package spdy encodes and decodes SPDY frames: the framing layer of SPDY/2
// and SPDY/3, including the zlib-compressed name/value header blocks with the
// version's dictionary. SPDY/3.1 is version 3 on the wire; it differs from
// SPDY/3 only in session behaviour (the session flow-control window on stream
// 0), so it uses this package's V3 framing unchanged.
//
// The package is a pure codec. It starts no goroutines, opens no sockets and
// logs nothing. It checks the layout of each frame (lengths, versions, header
// block syntax, resource limits) and reports violations as a *StreamError
// (answer with RST_STREAM) or a *SessionError (answer with GOAWAY and close);
// it does not track stream state, flow-control windows or settings. That is
// the session's job.
//
// Specifications: SPDY Protocol Draft 2, Draft 3 and Draft 3.1
// (https://www.chromium.org/spdy/spdy-protocol). Section numbers in comments
// refer to Draft 3.1 unless they say otherwise.
package spdy
