package spdymux

import "flag"

// handlerMode runs the tests that start a server through newTestServer or
// startAttackServer in handler mode (Config.Handler): go test -args
// -handler-mode. Tests that configure the http.Server keep secondary
// connections, since what they check is the http.Server's.
var handlerMode = flag.Bool("handler-mode", false, "serve streams with Config.Handler instead of secondary connections")
