// Package cli is the spdymux command: the dispatch of subcommands and the
// subcommands themselves. It is not an API; cmd/spdymux's main only calls
// Main.
//
// Every subcommand returns an exit code and an error; only main exits. An
// error is printed as one line, "spdymux CMD: ...", on stderr: mistakes a
// user can make (a bad flag value, a port in use, an unreadable
// certificate) never print a stack trace. Exit codes: 0 success (including
// a clean shutdown on SIGINT or SIGTERM and -h), 1 the command failed,
// 2 the command line is wrong, and for get -f, 22 a response of status 400
// or more (as curl --fail).
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/term"
)

// Exit codes of every subcommand.
const (
	exitOK      = 0
	exitFailure = 1  // the command could not do its work
	exitUsage   = 2  // the command line is wrong
	exitHTTP    = 22 // get -f: the server answered 400 or more (curl's code)
)

// env is what a subcommand works with besides its arguments.
type env struct {
	stdout, stderr io.Writer

	// ready, when set, is called by serve once it listens, with the
	// addresses it listens on; tests use it to learn the ports.
	ready func(listening)

	// hup, when set, stands for SIGHUP in tests: serve reloads on each
	// value. Unset, serve takes the real signal.
	hup <-chan struct{}

	// isTerminal reports whether w is a terminal; nil means: an *os.File
	// that is a terminal.
	isTerminal func(w io.Writer) bool
}

// terminal reports whether w is a terminal.
func (e *env) terminal(w io.Writer) bool {
	if e.isTerminal != nil {
		return e.isTerminal(w)
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// listening are the addresses serve listens on; nil for a listener it does
// not have.
type listening struct {
	tls, plain, metrics net.Addr
}

// command is one subcommand. run gets the arguments after the command's
// name and ctx, which is cancelled on SIGINT or SIGTERM.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e *env, args []string) (int, error)
}

// commands lists the subcommands in the order help shows them. A new
// subcommand (a SPDY client "get", a load generator "bench") is one more
// entry, with its run function in a file of its own.
var commands = []command{
	{"serve", "serve the demo site, a directory or an HTTP/1.1 backend over HTTP/2, SPDY and HTTP/1.1", runServe},
	{"get", "fetch URLs over SPDY or HTTP/2, with timings and an optional frame trace", runGet},
	{"bench", "measure a server's requests per second and latency over SPDY, HTTP/2 or HTTP/1.1", runBench},
	{"version", "print the version of spdymux and of the Go that built it", runVersion},
}

// Main runs the spdymux command with args (without the program name) and
// returns the exit code. SIGINT and SIGTERM stop a running command
// gracefully; a second signal kills the process at once.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal, give the signals back to their default
	// action, so that a second one ends a shutdown that takes too long.
	context.AfterFunc(ctx, stop)
	return run(ctx, &env{stdout: stdout, stderr: stderr}, args)
}

// run dispatches args to a subcommand and prints its error.
func run(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 {
		usage(e.stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 && name == "help" {
			if c, ok := lookup(args[1]); ok {
				return finish(ctx, e, c, []string{"-h"})
			}
			fmt.Fprintf(e.stderr, "spdymux: unknown command %q (run 'spdymux help')\n", args[1])
			return exitUsage
		}
		usage(e.stdout)
		return exitOK
	case "-version", "--version", "-v":
		name = "version"
	}
	c, ok := lookup(name)
	if !ok {
		fmt.Fprintf(e.stderr, "spdymux: unknown command %q (run 'spdymux help')\n", name)
		return exitUsage
	}
	return finish(ctx, e, c, args[1:])
}

func lookup(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// finish runs a subcommand and prints its error, if any, as one line.
// flag.ErrHelp means the subcommand printed its help: exit status 0.
func finish(ctx context.Context, e *env, c command, args []string) int {
	code, err := c.run(ctx, e, args)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	var logged loggedError
	if err != nil && !errors.As(err, &logged) {
		msg := strings.Join(strings.Fields(err.Error()), " ")
		fmt.Fprintf(e.stderr, "spdymux %s: %s\n", c.name, msg)
	}
	if err != nil && code == exitOK {
		code = exitFailure
	}
	return code
}

// loggedError is an error a command has already written to its log: it is
// not printed again.
type loggedError struct{ err error }

func (e loggedError) Error() string { return e.err.Error() }
func (e loggedError) Unwrap() error { return e.err }

// parseFlags parses a subcommand's args into fs, whose name is the
// command's ("spdymux get"). For -h it prints head, the flags and tail to
// stdout and returns flag.ErrHelp; a bad flag is an error that says where
// help is. The caller returns exitUsage with any error.
func parseFlags(e *env, fs *flag.FlagSet, args []string, head, tail string) error {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(e.stdout)
		fmt.Fprint(e.stdout, head)
		fs.PrintDefaults()
		fmt.Fprint(e.stdout, tail)
		return flag.ErrHelp
	case err != nil:
		return fmt.Errorf("%v (run '%s -h')", err, fs.Name())
	}
	return nil
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "spdymux serves HTTP/2, SPDY/3.1, SPDY/3 and SPDY/2 in front of HTTP/1.1.\n\n")
	fmt.Fprintf(w, "Usage:\n\n\tspdymux <command> [flags]\n\nCommands:\n\n")
	for _, c := range commands {
		fmt.Fprintf(w, "\t%-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun 'spdymux <command> -h' for a command's flags, 'spdymux -version' for the version.\n")
}
