// Package browsertest loads the demo site of `spdymux serve` in a real
// headless Chromium, driven over the DevTools protocol with chromedp, and
// checks what a browser user gets: the page and its tiles over HTTP/2 on one
// connection, each tile naming its stream, and no console error. It has
// only tests; nothing imports it.
//
// Browsers no longer speak SPDY, so what a browser can show of spdymux is
// HTTP/2 (RFC 9113), negotiated by ALPN. Until spdymux offers h2, Chromium
// gets HTTP/1.1 and the test checks the page as HTTP/1.1 describes itself,
// then skips the HTTP/2 checks.
//
// It needs Debian's /usr/bin/chromium. Without it the test skips, or fails
// when CI=true. Environment:
//
//	SCREENSHOT_DIR=DIR        keep the full-page screenshot PNG in DIR
//	                          (default: the test's temporary directory)
//	UPDATE_SCREENSHOT=1       also write ../../docs/demo-h2.png, the
//	                          README's picture, once the page came over h2
//	BROWSERTEST_REFERENCE=1   serve the demo handler with net/http's own
//	                          HTTP/2 instead of spdymux, to check the
//	                          harness; the checks that need spdymux's stream
//	                          facts are left out then
package browsertest
