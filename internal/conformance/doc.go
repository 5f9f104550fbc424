// Package conformance runs external conformance suites against spdymux
// over real sockets. It holds tests only.
//
// h2spec_test.go runs h2spec (github.com/summerwind/h2spec v2.2.1, strict
// mode: 146 cases of RFC 7540/9113 and RFC 7541) against an HTTP/2 server
// started by one of several targets: the library in process (an
// http.Server on spdymux.NewListener, with secondary connections and in
// handler mode), the gateway in process in front of a net/http HTTP/1.1
// backend (in handler mode, as `spdymux serve` runs it), and, for
// comparison only, Go's own net/http HTTP/2 server. Each target is run over TLS (h2 chosen by ALPN) and over
// cleartext with prior knowledge (h2c). Every failed case is reported by
// its h2spec id, such as http2/5.1.1/2, with h2spec's message; spdymux's
// targets must pass every case.
//
// h2spec is looked for in PATH and then in $(go env GOPATH)/bin; install it
// with
//
//	go install github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible
//
// Without it the tests skip, unless the environment variable CI is "true":
// there they fail. The reference target (Go's net/http) runs only with
// H2SPEC_REFERENCE=1; its result is logged, not asserted.
package conformance
