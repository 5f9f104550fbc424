// Package apachetest runs a real Apache httpd for tests: Debian's apache2
// (/usr/sbin/apache2, modules in /usr/lib/apache2/modules) on a free
// loopback port, with a configuration, document root and CGI script it
// writes into the test's temporary directory. It is the unmodified HTTP/1.1
// server that tests put behind the spdymux gateway.
//
// The server answers plain HTTP/1.1 with keep-alive, using the event MPM,
// and serves:
//
//   - BigPath: BigSize bytes where byte i is i mod 251 (the pattern of the
//     demo site's /bytes/N),
//   - SmallPath(i) for i in [0, SmallFiles): SmallBody(i),
//   - EchoPath: a Perl CGI script that reads the whole request body and
//     answers it back with Content-Length, with headers telling what the
//     script was told: X-Seen-Forwarded, X-Seen-Forwarded-For,
//     X-Seen-Forwarded-Proto and X-Seen-Forwarded-Host (each present only
//     when the request carried that header), X-Seen-Remote-Addr,
//     X-Seen-Method and X-Seen-Content-Length (when set). A query
//     "sleep=MS" makes it wait MS milliseconds before answering.
//   - CutPath: a Perl CGI script that declares a Content-Length and dies
//     before it has sent that many bytes: "len=L&send=N" makes it announce
//     L pattern bytes and send N of them (default 100000 and 50000), so
//     that Apache must close the connection in the middle of the body.
//   - PushXACPath and PushLinkPath: CGI scripts that answer a page and ask
//     for pushes, as mod_spdy's and mod_http2's users did: the first with
//     X-Associated-Content naming SmallPath(0) and SmallPath(1) (at
//     priority 2), the second with Link rel=preload naming SmallPath(2),
//     and SmallPath(3) with nopush.
//
// Start skips the test when /usr/sbin/apache2 is missing, unless the
// environment variable CI is "true": there a missing Apache fails the test.
// It works as root (the CI case: Apache then serves as www-data, and the
// temporary directories are opened up for that user) and as any other user.
package apachetest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Paths of the Apache httpd binary and modules (Debian's apache2 package).
const (
	Binary     = "/usr/sbin/apache2"
	ModulesDir = "/usr/lib/apache2/modules"
)

// The content the server is started with.
const (
	BigPath    = "/big.bin"
	BigSize    = 16 << 20
	SmallFiles = 64
	EchoPath   = "/cgi-bin/echo"
	CutPath    = "/cgi-bin/cut"

	PushXACPath  = "/cgi-bin/push-xac"
	PushLinkPath = "/cgi-bin/push-link"
	// PushPageBody is the body of PushXACPath and PushLinkPath.
	PushPageBody = "<!doctype html><title>pushed</title><p>a page whose assets are pushed\n"
)

// SmallPath returns the path of small file i.
func SmallPath(i int) string { return fmt.Sprintf("/small/%d.txt", i) }

// SmallBody returns the content of small file i.
func SmallBody(i int) string { return fmt.Sprintf("small file %d from apache\n", i) }

// PatternByte is byte i of BigPath.
func PatternByte(i int64) byte { return byte(i % 251) }

// Apache is one running Apache httpd. Its methods are not safe for
// concurrent use.
type Apache struct {
	t    testing.TB
	opts Options
	dir  string // ServerRoot: conf, logs, run, htdocs, cgi-bin
	addr string // 127.0.0.1:PORT
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has been waited for
}

// Options change the configuration Start writes. Zero fields keep the
// defaults.
type Options struct {
	// KeepAliveTimeout is Apache's KeepAliveTimeout: how long it keeps an
	// idle connection open for the next request (default 30 s; Apache
	// counts in milliseconds at best).
	KeepAliveTimeout time.Duration
}

// Start writes a configuration and content into a new temporary directory,
// starts Apache on a free loopback port and waits until it answers. The
// server is stopped when the test ends.
func Start(t testing.TB) *Apache {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith is Start with opts.
func StartWith(t testing.TB, opts Options) *Apache {
	t.Helper()
	if _, err := os.Stat(Binary); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("apachetest: %s is missing; install Debian's apache2 package", Binary)
		}
		t.Skipf("apachetest: skipping: %s is missing (install Debian's apache2 package to run this test)", Binary)
	}
	a := &Apache{t: t, opts: opts, dir: t.TempDir()}
	if err := a.setup(); err != nil {
		t.Fatalf("apachetest: %v", err)
	}
	t.Cleanup(a.Stop)
	a.start()
	return a
}

// URL returns the server's base URL, "http://127.0.0.1:PORT".
func (a *Apache) URL() string { return "http://" + a.addr }

// Addr returns the server's address, "127.0.0.1:PORT".
func (a *Apache) Addr() string { return a.addr }

// DocumentRoot returns the directory the server serves files from.
func (a *Apache) DocumentRoot() string { return filepath.Join(a.dir, "htdocs") }

// ErrorLog returns the content of the server's error log.
func (a *Apache) ErrorLog() string {
	b, _ := os.ReadFile(filepath.Join(a.dir, "logs", "error.log"))
	return string(b)
}

// AccessLog returns the content of the server's access log. Its lines are
// the Common Log Format followed by the quoted values of X-Forwarded-For,
// Forwarded, X-Forwarded-Proto and X-Forwarded-Host ("-" when absent; a
// quote inside is written \"), the connection status when the response
// was done ("X": the connection was aborted before the response
// completed, "+": kept alive, "-": closed) and the bytes actually written
// to the network, headers included. (The Common Log Format's own byte
// count is the response's length, even when the client went away early.)
// AccessLogLine matches one line.
func (a *Apache) AccessLog() string {
	b, _ := os.ReadFile(filepath.Join(a.dir, "logs", "access.log"))
	return string(b)
}

// AccessLogLine matches a line of AccessLog. Its groups: the client
// address, the request line, the status, the response length ("-" for
// none), X-Forwarded-For, Forwarded (quotes still escaped),
// X-Forwarded-Proto, X-Forwarded-Host, the connection status and the
// bytes written.
var AccessLogLine = regexp.MustCompile(`^(\S+) \S+ \S+ \[[^\]]+\] "((?:[^"\\]|\\.)*)" (\d{3}) (\S+) "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)" ([X+-]) (\d+)$`)

// Stop stops the server and waits for it to exit; connections to it are
// cut. Stopping a stopped server does nothing.
func (a *Apache) Stop() {
	if a.cmd == nil {
		return
	}
	_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGCONT) // if paused
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.done:
	case <-time.After(10 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.done
	}
	a.cmd = nil
}

// Pause stops every process of the server with SIGSTOP: connections are
// still accepted by the kernel, into the listen queue, but nothing is read
// or answered until Resume. The server is resumed before it is stopped.
func (a *Apache) Pause() {
	a.signalAll(syscall.SIGSTOP)
	// kill returns before a thread running on another CPU has stopped:
	// wait until every thread of the group is seen stopped, so that
	// nothing is answered once Pause returns.
	deadline := time.Now().Add(5 * time.Second)
	for !a.groupStopped() {
		if time.Now().After(deadline) {
			a.t.Fatal("apachetest: the server's threads did not stop within 5 s of SIGSTOP")
		}
		time.Sleep(time.Millisecond)
	}
}

// groupStopped reports whether every thread of every process in the
// server's process group is stopped (state T).
func (a *Apache) groupStopped() bool {
	pgid := strconv.Itoa(a.cmd.Process.Pid)
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		a.t.Fatalf("apachetest: %v", err)
	}
	for _, d := range dirs {
		if _, err := strconv.Atoi(d.Name()); err != nil {
			continue
		}
		f := procStat(filepath.Join("/proc", d.Name(), "stat"))
		if len(f) < 3 || f[2] != pgid {
			continue
		}
		tasks, _ := os.ReadDir(filepath.Join("/proc", d.Name(), "task"))
		for _, task := range tasks {
			tf := procStat(filepath.Join("/proc", d.Name(), "task", task.Name(), "stat"))
			if len(tf) > 0 && tf[0] != "T" && tf[0] != "Z" && tf[0] != "X" {
				return false
			}
		}
	}
	return true
}

// procStat returns the fields of a /proc stat file after the command
// name: state, ppid, pgrp and the rest; nil if it cannot be read.
func procStat(path string) []string {
	stat, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(stat[i+1:]))
}

// Resume continues the processes Pause stopped.
func (a *Apache) Resume() { a.signalAll(syscall.SIGCONT) }

// KillChildren kills the server's child processes with SIGKILL, as a crash
// would: the connections they serve are cut in the middle of whatever they
// were sending. The main process starts new children (within a second or
// so); connections wait in the listen queue meanwhile.
func (a *Apache) KillChildren() {
	a.t.Helper()
	if a.cmd == nil {
		a.t.Fatal("apachetest: KillChildren on a server that is not running")
	}
	main := a.cmd.Process.Pid
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		a.t.Fatalf("apachetest: %v", err)
	}
	killed := 0
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 2 || f[1] != strconv.Itoa(main) {
			continue
		}
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			killed++
		}
	}
	if killed == 0 {
		a.t.Fatal("apachetest: KillChildren found no child process")
	}
}

// signalAll sends sig to the server's process group: its main process,
// its children and the CGI daemon.
func (a *Apache) signalAll(sig syscall.Signal) {
	a.t.Helper()
	if a.cmd == nil {
		a.t.Fatalf("apachetest: %v to a server that is not running", sig)
	}
	if err := syscall.Kill(-a.cmd.Process.Pid, sig); err != nil {
		a.t.Fatalf("apachetest: %v: %v", sig, err)
	}
}

// Restart stops the server if it runs and starts it again on the same
// port, waiting until it answers.
func (a *Apache) Restart() {
	a.t.Helper()
	a.Stop()
	a.start()
}

// start runs Apache and waits until it answers on a.addr.
func (a *Apache) start() {
	a.t.Helper()
	out, err := os.OpenFile(filepath.Join(a.dir, "logs", "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		a.t.Fatalf("apachetest: %v", err)
	}
	defer out.Close()
	cmd := exec.Command(Binary, "-d", a.dir, "-f", filepath.Join(a.dir, "conf", "httpd.conf"), "-DFOREGROUND")
	cmd.Stdout, cmd.Stderr = out, out
	// Should the test binary die, take Apache's main process with it. A
	// process group of its own lets Pause stop all of its processes.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
	if err := cmd.Start(); err != nil {
		a.t.Fatalf("apachetest: start %s: %v", Binary, err)
	}
	a.cmd, a.done = cmd, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(a.done)

	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := client.Get(a.URL() + SmallPath(0))
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		select {
		case <-a.done:
			a.cmd = nil
			a.t.Fatalf("apachetest: apache2 exited at start (%v); error log:\n%s%s", cmd.ProcessState, a.ErrorLog(), a.stdout())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("apachetest: apache2 did not answer on %s within 15s (last: %v); error log:\n%s", a.addr, err, a.ErrorLog())
		}
	}
}

func (a *Apache) stdout() string {
	b, _ := os.ReadFile(filepath.Join(a.dir, "logs", "stdout.log"))
	return string(b)
}

// setup picks a port and writes the configuration and the content.
func (a *Apache) setup() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	a.addr = ln.Addr().String()
	ln.Close()

	for _, d := range []string{"conf", "logs", "run", "htdocs/small", "cgi-bin"} {
		if err := os.MkdirAll(filepath.Join(a.dir, d), 0o755); err != nil {
			return err
		}
	}
	asRoot := os.Geteuid() == 0
	if asRoot {
		// Apache serves as www-data, which must be able to reach the
		// document root and the script through the temporary directories
		// the testing package made private.
		for _, d := range []string{a.dir, filepath.Dir(a.dir)} {
			if err := os.Chmod(d, 0o755); err != nil {
				return err
			}
		}
	}
	if err := os.WriteFile(filepath.Join(a.dir, "conf", "httpd.conf"), []byte(a.config(asRoot)), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(a.dir, "cgi-bin", "echo"), []byte(echoScript), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(a.dir, "cgi-bin", "cut"), []byte(cutScript), 0o755); err != nil {
		return err
	}
	for name, header := range map[string]string{
		"push-xac":  `X-Associated-Content: "` + SmallPath(0) + `", "` + SmallPath(1) + `":2`,
		"push-link": `Link: <` + SmallPath(2) + `>; rel=preload, <` + SmallPath(3) + `>; rel=preload; nopush`,
	} {
		script := fmt.Sprintf(pushScript, header, PushPageBody)
		if err := os.WriteFile(filepath.Join(a.dir, "cgi-bin", name), []byte(script), 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(a.dir, "htdocs", "index.html"), []byte(indexHTML), 0o644); err != nil {
		return err
	}
	for i := range SmallFiles {
		if err := os.WriteFile(filepath.Join(a.dir, "htdocs", SmallPath(i)), []byte(SmallBody(i)), 0o644); err != nil {
			return err
		}
	}
	return writePattern(filepath.Join(a.dir, "htdocs", BigPath), BigSize)
}

// writePattern writes n pattern bytes to a new file at name.
func writePattern(name string, n int64) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 64<<10)
	for i := range n {
		_ = w.WriteByte(PatternByte(i))
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (a *Apache) config(asRoot bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "ServerRoot %q\n", a.dir)
	fmt.Fprintf(&b, "Listen %s\n", a.addr)
	b.WriteString("ServerName 127.0.0.1\n")
	for _, m := range []string{"mpm_event", "authz_core", "mime", "dir", "alias", "cgid"} {
		fmt.Fprintf(&b, "LoadModule %s_module %s/mod_%s.so\n", m, ModulesDir, m)
	}
	if asRoot {
		b.WriteString("User www-data\nGroup www-data\n")
	}
	run := filepath.Join(a.dir, "run")
	fmt.Fprintf(&b, "DefaultRuntimeDir %q\nPidFile %q\nScriptSock %q\nMutex file:%s default\n",
		run, filepath.Join(run, "httpd.pid"), filepath.Join(run, "cgid.sock"), run)
	b.WriteString(`ErrorLog "logs/error.log"
LogLevel warn
LogFormat "%h %l %u %t \"%r\" %>s %b \"%{X-Forwarded-For}i\" \"%{Forwarded}i\" \"%{X-Forwarded-Proto}i\" \"%{X-Forwarded-Host}i\" %X %O" forwarded
CustomLog "logs/access.log" forwarded
TypesConfig /etc/mime.types
Timeout 30
KeepAlive On
MaxKeepAliveRequests 0
StartServers 2
ServerLimit 4
ThreadsPerChild 64
MaxRequestWorkers 256
DocumentRoot "htdocs"
DirectoryIndex index.html
<Directory />
    AllowOverride None
    Require all denied
</Directory>
`)
	keepAlive := "30"
	if d := a.opts.KeepAliveTimeout; d > 0 {
		keepAlive = fmt.Sprintf("%dms", max(d.Milliseconds(), 1))
	}
	fmt.Fprintf(&b, "KeepAliveTimeout %s\n", keepAlive)
	fmt.Fprintf(&b, "<Directory %q>\n    Require all granted\n</Directory>\n", filepath.Join(a.dir, "htdocs"))
	fmt.Fprintf(&b, "ScriptAlias /cgi-bin/ %q\n", filepath.Join(a.dir, "cgi-bin")+"/")
	fmt.Fprintf(&b, "<Directory %q>\n    Options +ExecCGI\n    Require all granted\n</Directory>\n", filepath.Join(a.dir, "cgi-bin"))
	return b.String()
}

const indexHTML = "<!doctype html><title>apachetest</title><p>Apache httpd behind spdymux.\n"

// cutScript is the CGI behind CutPath: it announces len pattern bytes and
// exits after send of them.
const cutScript = `#!/usr/bin/perl
use strict;
use warnings;
binmode STDOUT;
$| = 1;
my %q = map { split /=/, $_, 2 } grep { /=/ } split /&/, ($ENV{QUERY_STRING} || '');
my $len = defined $q{len} ? $q{len} : 100000;
my $send = defined $q{send} ? $q{send} : 50000;
print "Content-Type: application/octet-stream\r\n";
print "Content-Length: $len\r\n\r\n";
my $body = '';
$body .= chr($_ % 251) for 0 .. $send - 1;
print $body;
exit 0;
`

// pushScript is the CGI behind PushXACPath and PushLinkPath, with the
// header that asks for pushes and the page's body.
const pushScript = `#!/usr/bin/perl
use strict;
use warnings;
print "Content-Type: text/html\r\n";
print '%s' . "\r\n\r\n";
print "%s";
`

// echoScript is the CGI behind EchoPath. It reads the whole body before it
// writes anything: Apache's CGI modules feed the script's stdin before
// they read its stdout, so echoing while reading could fill both pipes.
const echoScript = `#!/usr/bin/perl
use strict;
use warnings;
binmode STDIN;
binmode STDOUT;
my $body = '';
my $len = $ENV{CONTENT_LENGTH};
if (defined $len && $len ne '') {
    my $got = 0;
    while ($got < $len) {
        my $n = read(STDIN, $body, $len - $got, $got);
        last unless $n;
        $got += $n;
    }
} else {
    local $/;
    $body = <STDIN>;
    $body = '' unless defined $body;
}
if (($ENV{QUERY_STRING} || '') =~ /(?:^|&)sleep=(\d+)/) {
    select(undef, undef, undef, $1 / 1000);
}
print "Content-Type: application/octet-stream\r\n";
print "Content-Length: " . length($body) . "\r\n";
my @seen = (
    ['Forwarded', 'HTTP_FORWARDED'],
    ['Forwarded-For', 'HTTP_X_FORWARDED_FOR'],
    ['Forwarded-Proto', 'HTTP_X_FORWARDED_PROTO'],
    ['Forwarded-Host', 'HTTP_X_FORWARDED_HOST'],
    ['Remote-Addr', 'REMOTE_ADDR'],
    ['Method', 'REQUEST_METHOD'],
    ['Content-Length', 'CONTENT_LENGTH'],
);
for my $s (@seen) {
    my $v = $ENV{$s->[1]};
    print "X-Seen-$s->[0]: $v\r\n" if defined $v && $v ne '';
}
print "\r\n";
print $body;
`
