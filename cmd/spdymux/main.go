// Command spdymux serves HTTP/2, SPDY/3.1, SPDY/3 and SPDY/2 in front of
// HTTP/1.1: a built-in demo site, a directory, or an unmodified HTTP/1.1
// server such as Apache httpd. Its get and bench commands are a client and
// a load generator for SPDY and HTTP/2. Run `spdymux help` for the commands
// and `spdymux serve -h` for the flags.
package main

import (
	"os"

	"github.com/spdymux/spdymux/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
