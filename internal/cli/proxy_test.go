package cli

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/spdymux/spdymux"
)

// proxyDialer dials addr and sends a PROXY header (version 1 or 2) that
// names src as the client.
func proxyDialer(version byte, src string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		srcAddr, _ := net.ResolveTCPAddr("tcp", src)
		h := proxyproto.HeaderProxyFromAddrs(version, srcAddr, c.RemoteAddr())
		if _, err := h.WriteTo(c); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
}

// With -proxy-protocol, the address in the PROXY header is the client's
// for the server, the access log, Forwarded and X-Forwarded-For, over
// SPDY, HTTP/2 and HTTP/1.1, TLS and cleartext; a connection without a
// header is closed, and the log says why.
func TestProxyProtocol(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s|%s|%s", r.Header.Get("X-Forwarded-For"), r.Header.Get("Forwarded"), r.Host)
	}))
	defer backend.Close()
	s := startServe(t, "-listen", "127.0.0.1:0", "-listen-plain", "127.0.0.1:0", "-proxy-protocol", "-backend", backend.URL,
		"-access-log", "-", "-metrics", "127.0.0.1:0")
	plain, tlsAddr := s.addrs.plain.String(), s.addrs.tls.String()
	insecure := &tls.Config{InsecureSkipVerify: true}

	for _, tc := range []struct {
		name   string
		client *http.Client
		url    string
		src    string
		proto  string
	}{
		{"spdy/3.1 over TLS, v2", &http.Client{Transport: &spdymux.Transport{TLSClientConfig: insecure, DialContext: proxyDialer(2, "203.0.113.7:40001")}},
			"https://" + tlsAddr + "/a", "203.0.113.7", "SPDY/3.1"},
		{"spdy/2 cleartext, v1", &http.Client{Transport: &spdymux.Transport{PlainProtocol: spdymux.ProtoSPDY2, DialContext: proxyDialer(1, "198.51.100.9:40002")}},
			"http://" + plain + "/b", "198.51.100.9", "SPDY/2"},
		{"h2c, v2 IPv6", &http.Client{Transport: newH2Client(h2Options{dial: proxyDialer(2, "[2001:db8::5]:40003")})},
			"http://" + plain + "/c", "2001:db8::5", "HTTP/2.0"},
		{"http/1.1 over TLS, v1", &http.Client{Transport: &http.Transport{TLSClientConfig: insecure, DialContext: proxyDialer(1, "192.0.2.44:40004")}},
			"https://" + tlsAddr + "/d", "192.0.2.44", "HTTP/1.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(t, tc.client, tc.url)
			parts := strings.Split(body, "|")
			forwardedFor := tc.src
			if strings.Contains(tc.src, ":") {
				forwardedFor = `"[` + tc.src + `]"`
			}
			if code != 200 || len(parts) != 3 || parts[0] != tc.src || !strings.HasPrefix(parts[1], "for="+forwardedFor+";") {
				t.Errorf("backend saw %q (%d); want X-Forwarded-For %s and Forwarded for=%s", body, code, tc.src, forwardedFor)
			}
			host := strings.TrimPrefix(strings.TrimPrefix(tc.url, "https://"), "http://")
			host = host[:strings.IndexByte(host, '/')]
			if len(parts) == 3 && parts[2] != host {
				t.Errorf("backend saw Host %q; want the client's, %q", parts[2], host)
			}
			path := tc.url[strings.LastIndexByte(tc.url, '/'):]
			want := tc.src + ` - - [`
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				if line := findLine(s.stdout.String(), `"GET `+path+` `+tc.proto+`"`); strings.HasPrefix(line, want) {
					break
				} else if time.Now().After(deadline) {
					t.Fatalf("access log line %q; want it to start %q", line, want)
				}
			}
		})
	}

	// No header: closed, counted and logged (once).
	for range 3 {
		c, err := net.Dial("tcp", plain)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if b, _ := io.ReadAll(c); len(b) != 0 {
			t.Errorf("a connection without a PROXY header got %q; want it closed unanswered", b)
		}
		c.Close()
	}
	r := waitLog(t, s, "connection closed: no PROXY protocol header (-proxy-protocol requires one: HAProxy's send-proxy or send-proxy-v2)", 1)
	if r["level"] != "WARN" || !strings.HasPrefix(r["remote"], "127.0.0.1:") {
		t.Errorf("log record %v", r)
	}
	if n := strings.Count(s.stderr.String(), "no PROXY protocol header"); n != 1 {
		t.Errorf("%d warnings for 3 connections without a header; want 1 (at most one each 10s)", n)
	}
	if m := scrape(t, s.addrs.metrics); m[series("spdymux_handshake_errors_total", "listener", "plain")] != 3 {
		t.Errorf("handshake errors on plain: %v; want 3", m[series("spdymux_handshake_errors_total", "listener", "plain")])
	}
}

// With -proxy-protocol-from, only those addresses may (and must) send a
// header; others connect directly.
func TestProxyProtocolFrom(t *testing.T) {
	s := startServe(t, "-listen", "", "-listen-plain", "127.0.0.1:0", "-proxy-protocol", "-proxy-protocol-from", "192.0.2.0/24,::1",
		"-log-level", "warn")
	base := "http://" + s.addrs.plain.String()
	// 127.0.0.1 is not a balancer: its connections are its own.
	code, body := get(t, http.DefaultClient, base+"/info")
	var info struct {
		Remote string `json:"remote_addr"`
	}
	if json.Unmarshal([]byte(body), &info); code != 200 || !strings.HasPrefix(info.Remote, "127.0.0.1:") {
		t.Errorf("direct client: %d, remote %q", code, info.Remote)
	}
	// ... and a PROXY header from it is refused.
	c := &http.Client{Transport: &http.Transport{DialContext: proxyDialer(1, "203.0.113.1:1000")}, Timeout: 5 * time.Second}
	if resp, err := c.Get(base + "/info"); err == nil {
		resp.Body.Close()
		t.Errorf("a PROXY header from a client not in -proxy-protocol-from: %s; want the connection closed", resp.Status)
	}
	waitLog(t, s, "connection closed: a PROXY protocol header from an address not in -proxy-protocol-from", 1)
}

// findLine returns the first line of s that holds sub.
func findLine(s, sub string) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if strings.Contains(sc.Text(), sub) {
			return sc.Text()
		}
	}
	return ""
}
