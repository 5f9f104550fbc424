package httpconv

import (
	"net/url"
	"reflect"
	"testing"
)

var requestURIs = []string{
	"/", "/hello", "/a/b/c.html", "/bytes/1024", "/a?b=c&d=e", "/a?", "/a??", "/a?b?c",
	"/?", "//double", "///triple", "/a;b=c", "/~user/@x:y", "/a$&+,=", "/a%20b", "/a%2Fb",
	"/a b", "/a#frag", "/a?b#c", "/é", "/a!b", "/a'b", "/(x)*", "/a\"b", "/a[b]", "/a{b}",
	"/a|b", "/a\\b", "/a^b", "/a`b", "/a<b>", "*", "", "a/b", "http://example.com/x",
	"/a?b c", "/a?\x7f", "/a\x00", "/a?%zz", "/a%zz", "/a?é",
}

// ParseRequestURI gives what net/url gives, fast path or not.
func TestParseRequestURI(t *testing.T) {
	for _, s := range requestURIs {
		checkRequestURI(t, s)
	}
}

func checkRequestURI(t *testing.T, s string) {
	t.Helper()
	want, wantErr := url.ParseRequestURI(s)
	got := url.URL{Host: "stale", Fragment: "stale"}
	err := ParseRequestURI(&got, s)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("%q: error %v, net/url's %v", s, err, wantErr)
	}
	if err == nil && !reflect.DeepEqual(got, *want) {
		t.Fatalf("%q: %#v, net/url's %#v", s, got, *want)
	}
}

// The common targets take no allocation.
func TestParseRequestURIAllocs(t *testing.T) {
	var u url.URL
	if n := testing.AllocsPerRun(100, func() { ParseRequestURI(&u, "/bytes/1024?x=1&y=2") }); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

func FuzzRequestURI(f *testing.F) {
	for _, s := range requestURIs {
		f.Add(s)
	}
	f.Fuzz(checkRequestURI)
}
