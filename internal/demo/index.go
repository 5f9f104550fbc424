package demo

import (
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// index writes the demo page: a grid of Tiles images that a browser fetches
// at once, all over the page's connection when it speaks HTTP/2 or SPDY,
// and a few words on what the reader is seeing. It names every tile in
// X-Associated-Content, mod_spdy's push header: spdymux pushes them where
// push is on (SPDY by default, HTTP/2 with -push-h2) and never shows the
// header to the client.
func index(w http.ResponseWriter, r *http.Request) {
	page := indexPage(ConnOf(r), r.Host)
	noStore(w)
	w.Header().Set("X-Associated-Content", tilePushes)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(page)))
	if r.Method != http.MethodHead {
		_, _ = io.WriteString(w, page)
	}
}

// indexPage returns the demo page for a request that came over c, naming
// host (the request's Host, "" for the default address) in the command
// that shows SPDY. The page loads nothing but its own tiles: no script, no
// style sheet, no font, and no favicon request.
func indexPage(c Conn, host string) string {
	if host == "" {
		host = "127.0.0.1:8443"
	}
	var b strings.Builder
	b.WriteString(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>spdymux demo</title>
<style>
body { font: 15px/1.45 system-ui, sans-serif; color: #222; max-width: 1000px; margin: 1.5em auto; padding: 0 1.5em; }
h1 { font-size: 1.6em; margin: 0 0 .3em; }
h2 { font-size: 1.15em; margin: 1.5em 0 .3em; }
p { max-width: 48em; margin: .5em 0; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, 96px); gap: 4px; margin: 1em 0 .4em; }
.grid img { width: 96px; height: 64px; display: block; }
.note { color: #555; font-size: 13px; }
.box { background: #f4f4f4; border-left: 4px solid #999; padding: .5em 1em; max-width: 46em; }
code, pre { font: 13px ui-monospace, monospace; background: #e8e8e8; }
code { padding: 0 .25em; }
pre { padding: .4em .7em; margin: .5em 0; overflow-x: auto; }
</style></head><body>
<h1>spdymux demo</h1>
`)
	fmt.Fprintf(&b, "<p>This page came over <b>%s</b>.</p>\n<p>", html.EscapeString(c.String()))
	switch {
	case c.Stream:
		fmt.Fprintf(&b, "The page and the %d tiles below came over <b>one connection</b>, as many streams of one %s session:"+
			" the browser asked for every tile at once, each request on a stream of its own."+
			" Each tile names the protocol, the session (<code>s%d</code>) and the stream it came over."+
			" spdymux handed every stream to an unmodified HTTP/1.1 server as a connection of its own.",
			Tiles, html.EscapeString(c.Protocol), c.SessionID)
	case c.Protocol == "HTTP/2":
		fmt.Fprintf(&b, "The page and the %d tiles below came over one connection as HTTP/2 streams,"+
			" but this server speaks HTTP/2 itself, not through spdymux, so the tiles cannot name their streams:"+
			" each names the protocol and the port of the browser's end of the connection, the same on every tile.", Tiles)
	default:
		fmt.Fprintf(&b, "%s carries <b>one request at a time per connection</b>,"+
			" so the browser fetched the %d tiles below over a few connections, one tile after another on each."+
			" Each tile names the protocol and the port of the browser's end of its connection:"+
			" tiles with the same port, and colour, shared a connection."+
			" Over HTTP/2 or SPDY the page and all its tiles come over one connection, as streams of one session.",
			html.EscapeString(c.Protocol), Tiles)
	}
	b.WriteString("</p>\n<div class=\"grid\">\n")
	for i := range Tiles {
		fmt.Fprintf(&b, "<img src=\"/tile/%d.svg\" alt=\"tile %d\">\n", i, i)
	}
	b.WriteString("</div>\n")
	if c.Stream {
		b.WriteString("<p class=\"note\">Each tile: its number, the protocol, then <code>sN · stream M</code>:" +
			" session N, one per client connection, and the stream in it. The colour follows the stream.</p>\n")
	}

	scheme, k := "http", ""
	if c.TLS {
		scheme, k = "https", "-k "
	}
	b.WriteString("<h2>Where is SPDY?</h2>\n<div class=\"box\">\n" +
		"<p>Browsers no longer speak SPDY: they dropped it in 2016 for HTTP/2, which grew out of it." +
		" To see this page over SPDY, ask spdymux's own client, which prints every frame it sends and receives:</p>\n")
	fmt.Fprintf(&b, "<pre>spdymux get %s-v %s://%s/</pre>\n", k, scheme, html.EscapeString(host))
	b.WriteString("<p class=\"note\">")
	if c.TLS {
		b.WriteString("<code>-k</code> accepts a self-signed certificate; ")
	}
	b.WriteString("<code>-proto spdy/3</code> or <code>-proto spdy/2</code> asks for an older version.</p>\n</div>\n")

	b.WriteString(`<h2>Diagnostic endpoints</h2>
<ul>
<li><a href="/hello"><code>GET /hello</code></a>: "hello, world"</li>
<li><a href="/bytes/1024"><code>GET /bytes/N</code></a>: N bytes, byte i = i mod 251</li>
<li><code>POST</code> or <code>PUT /echo</code>: the body sent back</li>
<li><a href="/status/418"><code>GET /status/N</code></a>: that status</li>
<li><a href="/slow?ms=500"><code>GET /slow?ms=N</code></a>: answers after N ms</li>
<li><a href="/headers"><code>GET /headers</code></a>: the request headers as JSON</li>
<li><a href="/info"><code>GET /info</code></a>: the connection this request came over</li>
</ul>
</body></html>
`)
	return b.String()
}

// tilePushes is the X-Associated-Content value that names every tile.
var tilePushes = func() string {
	var b strings.Builder
	for i := range Tiles {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, `"/tile/%d.svg"`, i)
	}
	return b.String()
}()

// tile writes /tile/N.svg: a small picture naming the stream it came over,
// coloured by stream so that concurrent streams stand apart; over HTTP/1.x
// it names and is coloured by the client's port, which tells its
// connection.
func tile(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	n, err := strconv.Atoi(strings.TrimSuffix(name, ".svg"))
	if !strings.HasSuffix(name, ".svg") || err != nil || n < 0 || n >= maxTile {
		badRequest(w, errTileName)
		return
	}
	svg := tileSVG(n, ConnOf(r))
	noStore(w)
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(svg)))
	if r.Method != http.MethodHead {
		_, _ = io.WriteString(w, svg)
	}
}

// tileSVG returns tile n as it came over c. Its second line is the
// protocol alone; over a stream the third is "sSESSION · stream ID", or
// "sSESSION · push ID" for a stream the server pushed.
func tileSVG(n int, c Conn) string {
	hue := (n * 37) % 360
	line3 := ""
	switch _, port, err := net.SplitHostPort(c.Remote); {
	case c.Stream && c.Pushed:
		hue = int(c.StreamID*37) % 360
		line3 = fmt.Sprintf("s%d · push %d", c.SessionID, c.StreamID)
	case c.Stream:
		hue = int(c.StreamID*37) % 360
		line3 = fmt.Sprintf("s%d · stream %d", c.SessionID, c.StreamID)
	case err == nil && port != "":
		if p, err := strconv.Atoi(port); err == nil {
			hue = (p * 222) % 360 // about the golden angle: near ports far apart
		}
		line3 = "port " + port
	case c.TLS:
		line3 = "over TLS"
	}
	return fmt.Sprintf(`<svg xmlns="http://www.w3.org/2000/svg" width="96" height="64" viewBox="0 0 96 64">
<rect width="96" height="64" rx="6" fill="hsl(%d,65%%,38%%)"/>
<g font-family="sans-serif" fill="#fff" text-anchor="middle">
<text x="48" y="20" font-size="13" font-weight="bold">#%d</text>
<text x="48" y="37" font-size="11">%s</text>
<text x="48" y="53" font-size="10">%s</text>
</g></svg>
`, hue, n, html.EscapeString(c.Protocol), html.EscapeString(line3))
}
