module github.com/spdymux/spdymux

go 1.26.8

require (
	github.com/moby/spdystream v0.5.1
	golang.org/x/net v0.62.0
)
