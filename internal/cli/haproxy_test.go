package cli

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spdymux/spdymux"
)

// Scale-out behind an L4 balancer: a real HAProxy in TCP mode in front of
// two spdymux instances, sending the PROXY protocol (v2 to one, v1 to the
// other) and checking /healthz on their metrics ports.

// freePort returns a loopback address no one listens on (now).
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

const haproxyConfig = `global
    maxconn 4096

defaults
    mode tcp
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    # A refused connection (an instance that stopped listening) is tried
    # again, on another server.
    retries 3
    option redispatch 1

frontend tls
    bind %[1]s
    default_backend tls

frontend plain
    bind %[2]s
    default_backend plain

backend tls
    balance roundrobin
    option httpchk
    http-check send meth GET uri /healthz
    default-server inter 100ms fall 1 rise 2
    server a %[3]s send-proxy-v2 check addr 127.0.0.1 port %[5]s
    server b %[4]s send-proxy check addr 127.0.0.1 port %[6]s

backend plain
    balance roundrobin
    option httpchk
    http-check send meth GET uri /healthz
    default-server inter 100ms fall 1 rise 2
    server a %[7]s send-proxy-v2 check addr 127.0.0.1 port %[5]s
    server b %[8]s send-proxy check addr 127.0.0.1 port %[6]s
`

// startHAProxy runs haproxy with cfg until the test ends.
func startHAProxy(t *testing.T, cfg string, listen ...string) {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		bin = "/usr/sbin/haproxy"
		if _, err := os.Stat(bin); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("no haproxy (Debian: haproxy); .ci/run installs it")
			}
			t.Skip("no haproxy (Debian: haproxy)")
		}
	}
	file := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-c", "-f", file).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-db", "-f", file)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("haproxy output:\n%s", out.String())
		}
	})
	for _, a := range listen {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			c, err := net.Dial("tcp", a)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("haproxy does not listen on %s:\n%s", a, out.String())
			}
		}
	}
}

// clientAddrs records the local addresses of the connections a client
// dials, from 127.0.0.2: the addresses the servers must see.
type clientAddrs struct {
	mu    sync.Mutex
	addrs map[string]bool
}

func (c *clientAddrs) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.addrs == nil {
		c.addrs = map[string]bool{}
	}
	c.addrs[conn.LocalAddr().String()] = true
	c.mu.Unlock()
	return conn, nil
}

func (c *clientAddrs) has(a string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.addrs[a]
}

// balancedClient is one kind of client through the balancer.
type balancedClient struct {
	name  string
	url   string // the balancer's URL, ending in /
	proto string // as /info names it: SPDY/3.1, HTTP/2, HTTP/1.1
	addrs *clientAddrs
	new   func() *http.Client // a client with fresh connections
}

func TestHAProxy(t *testing.T) {
	var inst [2]*serving
	for i := range inst {
		inst[i] = startServe(t, "-listen", "127.0.0.1:0", "-listen-plain", "127.0.0.1:0", "-metrics", "127.0.0.1:0",
			"-proxy-protocol", "-access-log", "-", "-log-level", "warn")
	}
	port := func(a net.Addr) string { _, p, _ := net.SplitHostPort(a.String()); return p }
	lbTLS, lbPlain := freePort(t), freePort(t)
	startHAProxy(t, fmt.Sprintf(haproxyConfig, lbTLS, lbPlain,
		inst[0].addrs.tls, inst[1].addrs.tls, port(inst[0].addrs.metrics), port(inst[1].addrs.metrics),
		inst[0].addrs.plain, inst[1].addrs.plain), lbTLS, lbPlain)

	insecure := &tls.Config{InsecureSkipVerify: true}
	var clients []*balancedClient
	add := func(name, url, proto string, mk func(dial dialFunc) http.RoundTripper) {
		c := &balancedClient{name: name, url: url, proto: proto, addrs: &clientAddrs{}}
		c.new = func() *http.Client { return &http.Client{Transport: mk(c.addrs.dial), Timeout: 20 * time.Second} }
		clients = append(clients, c)
	}
	add("spdy/3.1 over TLS", "https://"+lbTLS+"/", "SPDY/3.1", func(d dialFunc) http.RoundTripper {
		return &spdymux.Transport{TLSClientConfig: insecure, DialContext: d}
	})
	add("spdy/3.1 cleartext", "http://"+lbPlain+"/", "SPDY/3.1", func(d dialFunc) http.RoundTripper {
		return &spdymux.Transport{DialContext: d}
	})
	add("h2 over TLS", "https://"+lbTLS+"/", "HTTP/2", func(d dialFunc) http.RoundTripper {
		return newH2Client(h2Options{tls: insecure, dial: d})
	})
	add("http/1.1 cleartext", "http://"+lbPlain+"/", "HTTP/1.1", func(d dialFunc) http.RoundTripper {
		return &http.Transport{DialContext: d}
	})

	// Every client, over several connections: the servers see the
	// client's own address and port, and both instances serve.
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			for range 4 {
				hc := c.new()
				code, body := get(t, hc, c.url+"info")
				hc.CloseIdleConnections()
				var info struct {
					Remote   string `json:"remote_addr"`
					Protocol string `json:"protocol"`
				}
				if err := json.Unmarshal([]byte(body), &info); code != 200 || err != nil {
					t.Fatalf("/info: %d %q", code, body)
				}
				if !c.addrs.has(info.Remote) {
					t.Errorf("the server saw the client at %s; want one of the client's own addresses %v", info.Remote, c.addrs.addrs)
				}
				if info.Protocol != c.proto {
					t.Errorf("the server saw %q; want %s", info.Protocol, c.proto)
				}
			}
		})
	}
	for i, s := range inst {
		if n := strings.Count(s.stdout.String(), "127.0.0.2 - - ["); n == 0 {
			t.Errorf("instance %d served nothing from 127.0.0.2 through HAProxy:\n%s", i, s.stdout)
		}
	}

	// Traffic on every kind of client while instance 0 stops gracefully:
	// no request fails.
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, c := range clients {
		for w := range 2 {
			wg.Go(func() {
				hc := c.new()
				defer hc.CloseIdleConnections()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					path := "hello"
					if (i+w)%3 == 0 {
						path = "slow?ms=100"
					}
					resp, err := hc.Get(c.url + path)
					if err == nil {
						_, err = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if err == nil && resp.StatusCode != 200 {
							err = fmt.Errorf("status %s", resp.Status)
						}
					}
					if err != nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, fmt.Sprintf("%s %s: %v", c.name, path, err))
						continue
					}
					ok.Add(1)
				}
			})
		}
	}
	time.Sleep(time.Second)
	before := ok.Load()
	if code := inst[0].shutdown(t, 15*time.Second); code != 0 {
		t.Errorf("instance 0 exited %d; want 0", code)
	}
	stopped := ok.Load()
	served0 := strings.Count(inst[0].stdout.String(), "\n")
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("%d requests before the stop, %d while instance 0 drained, %d after; %d failed", before, stopped-before, ok.Load()-stopped, failed.Load())
	if n := failed.Load(); n != 0 {
		t.Errorf("%d requests failed while an instance stopped; the first: %v", n, firstErr.Load())
	}
	if ok.Load()-stopped < 20 {
		t.Errorf("only %d requests after the stop; want traffic to go on through instance 1", ok.Load()-stopped)
	}
	if after := strings.Count(inst[0].stdout.String(), "\n"); after != served0 {
		t.Errorf("instance 0 served %d requests after it stopped", after-served0)
	}
}
