// Package httpconv converts between SPDY header blocks and HTTP/1.1 message
// bytes, so that an unmodified HTTP/1.1 server can answer SPDY streams.
//
// The request side (AppendRequestHead and the chunk framing helpers) turns a
// SYN_STREAM header block into an HTTP/1.1 request head, following the rules
// of SPDY/2 and SPDY/3 (draft-mbelshe-httpbis-spdy-00 and the SPDY/3 draft,
// section 3.2.1 "Request") and of mod_spdy's spdy_to_http converter.
// The response side (ResponseParser) parses the HTTP/1.1 response an
// HTTP/1.1 server writes (RFC 9112) and reports it in SPDY form: a header
// block for SYN_REPLY, de-chunked body bytes, and trailers.
//
// It is not a codec: it neither compresses header blocks nor builds frames,
// and it has no goroutines, sockets or logging. Its functions and the
// ResponseParser's methods are not safe for concurrent use on the same
// value; distinct values may be used concurrently.
package httpconv
