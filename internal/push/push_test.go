package push

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
)

var base = mustParse("https://www.example.com/dir/page.html?x=1")

func mustParse(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func format(ts []Target) string {
	var parts []string
	for _, t := range ts {
		parts = append(parts, fmt.Sprintf("%s %d", t.URL, t.Priority))
	}
	return strings.Join(parts, ", ")
}

func TestParseAssociatedContent(t *testing.T) {
	for _, tt := range []struct {
		name, in, want string
	}{
		{"one absolute path", `"/a.css"`, "https://www.example.com/a.css 7"},
		{"the issue's example", `"https://host/a.css":2, "/b.js"`, "https://host/a.css 2, https://www.example.com/b.js 7"},
		// mod_spdy's server_push_filter_test.cc: the invalid URL is
		// skipped, the others pushed, whitespace anywhere.
		{"mod_spdy's test", ` "https://www.example.com/foo/bar.css?q=12" : 2, "https://this.is:not/a valid URL!":1, "/scripts/awesome.js":0 `,
			"https://www.example.com/foo/bar.css?q=12 2, https://www.example.com/scripts/awesome.js 0"},
		{"mod_spdy's doc example", "\"https://www.example.com/foo.css\",\n\t\"/bar/baz.js?x=y\" : 1, \"https://www.example.com/quux.css\":3",
			"https://www.example.com/foo.css 7, https://www.example.com/bar/baz.js?x=y 1, https://www.example.com/quux.css 3"},
		{"priority clamped", `"/a":99`, "https://www.example.com/a 7"},
		{"priority zero", `"/a":0`, "https://www.example.com/a 0"},
		{"huge priority", `"/a":99999999999999999999`, "https://www.example.com/a 7"},
		{"bad priority, then the list ends", `"/a":x, "/b"`, "https://www.example.com/a 7"},
		{"missing comma ends the list", `"/a" "/b"`, "https://www.example.com/a 7"},
		{"unquoted URL ends the list", `"/a", /b, "/c"`, "https://www.example.com/a 7"},
		{"no closing quote", `"/a", "/b`, "https://www.example.com/a 7"},
		{"relative reference resolved", `"style.css"`, "https://www.example.com/dir/style.css 7"},
		{"scheme-relative", `"//cdn.example.com/x.js"`, "https://cdn.example.com/x.js 7"},
		{"fragment dropped", `"/a.css#frag"`, "https://www.example.com/a.css 7"},
		{"userinfo dropped", `"https://u:p@www.example.com/a"`, "https://www.example.com/a 7"},
		{"other scheme skipped", `"ftp://www.example.com/a", "/b"`, "https://www.example.com/b 7"},
		{"opaque skipped", `"mailto:x@y", "/b"`, "https://www.example.com/b 7"},
		{"empty URL skipped", `"", "/b"`, "https://www.example.com/b 7"},
		{"empty value", ``, ""},
		{"only spaces", " \t\r\n", ""},
		{"trailing comma", `"/a",`, "https://www.example.com/a 7"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := format(ParseAssociatedContent(nil, base, tt.in)); got != tt.want {
				t.Errorf("ParseAssociatedContent(%q)\n got %s\nwant %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseLink(t *testing.T) {
	for _, tt := range []struct {
		name, in, want string
	}{
		{"preload", `</a.css>; rel=preload`, "https://www.example.com/a.css -1"},
		{"preload with as", `</a.css>; rel=preload; as=style`, "https://www.example.com/a.css -1"},
		{"nopush opts out", `</a.css>; rel=preload; nopush`, ""},
		{"nopush with a value", `</a.css>; rel=preload; nopush=1, </b.js>; rel=preload`, "https://www.example.com/b.js -1"},
		{"not preload", `</a.css>; rel=stylesheet, </next>; rel=next`, ""},
		{"rel list", `</a.css>; rel="prefetch preload"`, "https://www.example.com/a.css -1"},
		{"rel case", `</a.css>; REL=PreLoad`, "https://www.example.com/a.css -1"},
		{"preloadx is not preload", `</a.css>; rel=preloadX`, ""},
		{"several links", `</a.css>; rel=preload, </b.js>; rel=preload; as=script, </c>; rel=next`,
			"https://www.example.com/a.css -1, https://www.example.com/b.js -1"},
		{"spaces", `  </a.css> ;  rel = "preload"  ,</b.js>;rel=preload`, "https://www.example.com/a.css -1, https://www.example.com/b.js -1"},
		{"relative", `<img/x.png>; rel=preload`, "https://www.example.com/dir/img/x.png -1"},
		{"absolute URL", `<https://other.example/x>; rel=preload`, "https://other.example/x -1"},
		{"query kept, fragment dropped", `</s?v=1#f>; rel=preload`, "https://www.example.com/s?v=1 -1"},
		{"garbage ends the list", `</a>; rel=preload, garbage, </b>; rel=preload`, "https://www.example.com/a -1"},
		{"no closing bracket", `</a; rel=preload`, ""},
		{"quoted param with comma", `</a>; title="x, y"; rel=preload`, "https://www.example.com/a -1"},
		{"unterminated quote", `</a>; rel="preload`, ""},
		{"empty", ``, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := format(ParseLink(nil, base, tt.in)); got != tt.want {
				t.Errorf("ParseLink(%q)\n got %s\nwant %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestTargetPath(t *testing.T) {
	for in, want := range map[string]string{
		"https://h":             "/",
		"https://h/":            "/",
		"https://h/a%20b?x=1&y": "/a%20b?x=1&y",
		"https://h/a?":          "/a",
	} {
		if got := (Target{URL: mustParse(in)}).Path(); got != want {
			t.Errorf("Path of %s = %q; want %q", in, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`"https://host/a.css":2, "/b.js"`, ` "/a" : 1 , "b":x`, `</a.css>; rel=preload; as=style, </b>; rel="preload"; nopush`,
		`<a>;rel=preload;title="x,y",<b>`, `"`, `<`, `;`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		for _, ts := range [][]Target{ParseAssociatedContent(nil, base, v), ParseLink(nil, base, v)} {
			for _, tg := range ts {
				if tg.URL.Scheme != "http" && tg.URL.Scheme != "https" || tg.URL.Host == "" || tg.URL.Fragment != "" {
					t.Fatalf("%q gave %s", v, tg.URL)
				}
				if p := tg.Path(); p == "" || p[0] != '/' {
					t.Fatalf("%q gave path %q", v, p)
				}
				if tg.Priority < -1 || tg.Priority > LowestPriority {
					t.Fatalf("%q gave priority %d", v, tg.Priority)
				}
			}
		}
	})
}
