// Package httpconv converts between the header blocks of SPDY and HTTP/2
// streams and HTTP/1.1 message bytes, so that an unmodified HTTP/1.1
// server can answer SPDY and HTTP/2 streams, and builds the header blocks
// and responses of a client.
//
// One conversion serves three dialects (Dialect): SPDY2 and SPDY3
// (draft-mbelshe-httpbis-spdy-00 and the SPDY/3 draft, section 3.2; SPDY/3.1
// is SPDY3) and H2 (RFC 9113 section 8, with RFC 9110 semantics). They
// differ in the names of the request-line and status fields, in how a
// name with several values travels (SPDY: one field, values joined by NUL;
// HTTP/2: one field per value), and in what a bad request costs: SPDY
// answers it with an HTTP 400 (*BadRequestError), while HTTP/2 resets a
// malformed one with PROTOCOL_ERROR (*MalformedError, RFC 9113 section
// 8.1.1).
//
// Server side:
//   - AppendRequestHead turns the header block that opens a stream into an
//     HTTP/1.1 request head, following the rules above and mod_spdy's
//     spdy_to_http converter; AppendChunkHeader, AppendChunkEnd and
//     AppendLastChunk frame a body without content-length, and
//     CheckTrailers checks HTTP/2 request trailers first.
//   - ResponseParser parses the HTTP/1.1 response an HTTP/1.1 server writes
//     (RFC 9112) and reports it in the dialect's form: a header block for
//     SYN_REPLY or HEADERS, interim responses for HTTP/2 (InterimHandler),
//     de-chunked body bytes, and trailers.
//
// Client side: AppendRequestFields builds the header block of an
// http.Request, ResponseFromFields the http.Response of a reply's header
// block, and CheckHeader, ValidToken and ValidFieldValue are the checks of
// names and values that both sides share.
//
// It is not a codec: it neither compresses header blocks (SPDY's zlib,
// HPACK) nor builds frames, and it has no goroutines, sockets or logging.
// Its functions and the ResponseParser's methods are not safe for
// concurrent use on the same value; distinct values may be used
// concurrently.
package httpconv
