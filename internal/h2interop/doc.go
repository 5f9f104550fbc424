// Package h2interop proves spdymux's HTTP/2 with clients nobody here
// wrote. It holds tests only.
//
// Each test starts an unmodified net/http server on spdymux.NewListener,
// over TLS (h2 chosen by ALPN) and over cleartext (h2c by prior
// knowledge), with handlers for the corners of HTTP/2 semantics: small and
// large bodies of known bytes (byte i is i mod 251), uploads echoed with
// and without content-length, HEAD, 204 and 304, many response fields and
// repeated set-cookie, request and response trailers, 103 Early Hints, and
// the protocol a handler sees through spdymux.StreamInfoFromContext. A
// gate holds a group of requests until all of them have reached their
// handlers, which proves they were open at once.
//
// The clients: Go's net/http (http.Transport with Protocols) and
// golang.org/x/net/http2.Transport; curl (--http2, --http2-prior-knowledge,
// --parallel); nghttp and h2load from nghttp2; node's built-in http2
// module through package interop. A missing command skips its test, unless
// the environment variable CI is "true": there it fails.
package h2interop
