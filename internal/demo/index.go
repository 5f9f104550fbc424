package demo

import (
	"fmt"
	"html"
	"net/http"
	"strconv"
	"strings"
)

// index writes the demo page: a grid of Tiles images that a browser fetches
// at once, all over the page's session when it speaks SPDY.
func index(w http.ResponseWriter, r *http.Request) {
	c := ConnOf(r)
	var b strings.Builder
	b.WriteString(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>spdymux demo</title>
<style>
body { font: 15px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
.grid { display: grid; grid-template-columns: repeat(10, 96px); gap: 4px; margin: 1em 0; }
.grid img { width: 96px; height: 64px; display: block; }
code { background: #f3f3f3; padding: 0 .2em; }
</style></head><body>
<h1>spdymux demo</h1>
`)
	fmt.Fprintf(&b, "<p>This page came over <b>%s</b>.", html.EscapeString(c.String()))
	if c.SPDY {
		b.WriteString(" Every tile below is a request of its own; each names the protocol, session and stream it came over." +
			" With SPDY they share one connection: one session, many streams.")
	} else {
		b.WriteString(" This is not a SPDY session, so each tile below takes a request on one of a few connections." +
			" Try a SPDY client (see below).")
	}
	b.WriteString("</p>\n<div class=\"grid\">\n")
	for i := range Tiles {
		fmt.Fprintf(&b, "<img src=\"/tile/%d.svg\" alt=\"tile %d\">\n", i, i)
	}
	b.WriteString(`</div>
<h2>Diagnostic endpoints</h2>
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
	noStore(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte(b.String()))
	}
}

// tile writes /tile/N.svg: a small picture naming the stream it came over,
// coloured by stream so that concurrent streams stand apart.
func tile(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	n, err := strconv.Atoi(strings.TrimSuffix(name, ".svg"))
	if !strings.HasSuffix(name, ".svg") || err != nil || n < 0 || n >= maxTile {
		badRequest(w, errTileName)
		return
	}
	c := ConnOf(r)
	hue := (n * 37) % 360
	line2, line3 := c.Protocol, ""
	if c.SPDY {
		hue = int(c.StreamID*37) % 360
		line3 = fmt.Sprintf("s%d · stream %d", c.SessionID, c.StreamID)
	} else if c.TLS {
		line3 = "over TLS"
	}
	svg := fmt.Sprintf(`<svg xmlns="http://www.w3.org/2000/svg" width="96" height="64" viewBox="0 0 96 64">
<rect width="96" height="64" rx="6" fill="hsl(%d,70%%,45%%)"/>
<g font-family="sans-serif" fill="#fff" text-anchor="middle">
<text x="48" y="20" font-size="13" font-weight="bold">#%d</text>
<text x="48" y="37" font-size="11">%s</text>
<text x="48" y="53" font-size="9">%s</text>
</g></svg>
`, hue, n, html.EscapeString(line2), html.EscapeString(line3))
	noStore(w)
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(svg)))
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte(svg))
	}
}
