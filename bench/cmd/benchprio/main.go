// Command benchprio measures how priorities shield a small request from
// bulk downloads on the same session, for bench/run.sh. Over one session
// to -url (SPDY/3.1 priorities through spdymux.Transport, or with -proto h2
// HTTP/2 through net/http's Transport and RFC 9218's priority field) it measures the time to the first byte of the response
// (the response header) of GET /hello:
//
//	idle      on the idle session, at priority 0
//	loaded-0  at priority 0 while -downloads GET /bytes/N (-size) run at
//	          priority 7 on the same session
//	loaded-7  the same, but at priority 7, the downloads' own priority
//
// With -separate the downloads run on a second session, a control that
// puts the same load on the machine without sharing the measured session.
//
// Loaded samples are taken only while every download is still running;
// when one finishes, a fresh set is started (at most -rounds sets). It
// prints one JSON object: per kind n, min, p50, p90, max and mean in ms,
// and the downloads' aggregate body bytes per second.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptrace"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spdymux/spdymux"
)

func main() {
	var (
		base      = flag.String("url", "http://127.0.0.1:8080", "server base `URL` (http: cleartext spdy/3.1; https: TLS)")
		downloads = flag.Int("downloads", 8, "concurrent priority-7 downloads")
		size      = flag.Int64("size", 64<<20, "bytes per download")
		samples   = flag.Int("samples", 40, "samples of each kind")
		rounds    = flag.Int("rounds", 20, "most sets of downloads started")
		gap       = flag.Duration("gap", 5*time.Millisecond, "pause between samples")
		timeout   = flag.Duration("timeout", 120*time.Second, "give up after this long")
		proto     = flag.String("proto", "spdy/3.1", "`protocol`: spdy/3.1, or h2 (h2c with prior knowledge on http URLs)")
		separate  = flag.Bool("separate", false, "run the downloads on a second session instead (a control: the same load on the machine, but not on the measured session)")
	)
	flag.Parse()
	log.SetPrefix("benchprio: ")
	log.SetFlags(0)
	*base = strings.TrimSuffix(*base, "/")
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	var h2 bool
	switch *proto {
	case "spdy/3.1":
	case "h2":
		h2 = true
	default:
		log.Fatalf("bad -proto %q: want spdy/3.1 or h2", *proto)
	}
	// newClient returns a client whose requests share one session.
	newClient := func() (*http.Client, func()) {
		if h2 {
			var protos http.Protocols
			if strings.HasPrefix(*base, "http:") {
				protos.SetUnencryptedHTTP2(true)
			} else {
				protos.SetHTTP2(true)
			}
			tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, Protocols: &protos}
			return &http.Client{Transport: tr}, tr.CloseIdleConnections
		}
		tr := &spdymux.Transport{
			PlainProtocol:   spdymux.ProtoSPDY31,
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		}
		return &http.Client{Transport: tr}, tr.CloseIdleConnections
	}
	// request makes a GET of path at priority prio (0 highest, 7 lowest):
	// SPDY's priority, or RFC 9218 urgency.
	request := func(ctx context.Context, prio uint8, path string) *http.Request {
		if !h2 {
			ctx = spdymux.WithPriority(ctx, prio)
		}
		req, err := http.NewRequestWithContext(ctx, "GET", *base+path, nil)
		if err != nil {
			log.Fatal(err)
		}
		if h2 {
			req.Header.Set("Priority", "u="+strconv.Itoa(int(prio)))
		}
		return req
	}
	client, closeClient := newClient()
	defer closeClient()
	dlClient := client
	if *separate {
		c, closeC := newClient()
		defer closeC()
		dlClient = c
	}

	ttfb := func(prio uint8) (time.Duration, error) {
		var first time.Time
		trace := &httptrace.ClientTrace{GotFirstResponseByte: func() { first = time.Now() }}
		req := request(httptrace.WithClientTrace(ctx, trace), prio, "/hello")
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		if first.IsZero() {
			first = time.Now()
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != 200 {
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		return first.Sub(start), err
	}

	// Open the session, then sample on the idle session.
	if _, err := ttfb(0); err != nil {
		log.Fatal(err)
	}
	var idle, loaded0, loaded7 []time.Duration
	for range *samples {
		d, err := ttfb(0)
		if err != nil {
			log.Fatal(err)
		}
		idle = append(idle, d)
		time.Sleep(*gap)
	}

	var received atomic.Int64
	loadStart := time.Now()
	for round := 0; round < *rounds && (len(loaded0) < *samples || len(loaded7) < *samples); round++ {
		var running atomic.Int64
		var started sync.WaitGroup
		var wg sync.WaitGroup
		dctx, dcancel := context.WithCancel(ctx)
		errc := make(chan error, *downloads)
		for range *downloads {
			running.Add(1)
			started.Add(1)
			wg.Go(func() {
				defer running.Add(-1)
				once := sync.OnceFunc(started.Done)
				defer once()
				req := request(dctx, 7, "/bytes/"+strconv.FormatInt(*size, 10))
				resp, err := dlClient.Do(req)
				if err != nil {
					errc <- err
					return
				}
				defer resp.Body.Close()
				buf := make([]byte, 64<<10)
				var got int64
				for {
					n, err := resp.Body.Read(buf)
					got += int64(n)
					received.Add(int64(n))
					if got >= 1<<20 {
						once()
					}
					if err != nil {
						if err != io.EOF && dctx.Err() == nil {
							errc <- err
						}
						return
					}
				}
			})
		}
		started.Wait() // every download has 1 MiB, or has failed
		for running.Load() == int64(*downloads) && (len(loaded0) < *samples || len(loaded7) < *samples) {
			prio := uint8(0)
			if len(loaded7) < len(loaded0) {
				prio = 7
			}
			d, err := ttfb(prio)
			if err != nil {
				log.Fatal(err)
			}
			// Keep the sample only if every download was still running.
			if running.Load() == int64(*downloads) {
				if prio == 0 {
					loaded0 = append(loaded0, d)
				} else {
					loaded7 = append(loaded7, d)
				}
			}
			time.Sleep(*gap)
		}
		dcancel()
		wg.Wait()
		select {
		case err := <-errc:
			log.Fatalf("download: %v", err)
		default:
		}
	}
	loadTime := time.Since(loadStart)

	out := map[string]any{
		"proto":                 *proto,
		"separate_sessions":     *separate,
		"url":                   *base,
		"downloads":             *downloads,
		"download_size":         *size,
		"idle":                  summary(idle),
		"loaded_prio0":          summary(loaded0),
		"loaded_prio7":          summary(loaded7),
		"download_bytes_per_s":  float64(received.Load()) / loadTime.Seconds(),
		"loaded_phase_seconds":  loadTime.Seconds(),
		"loaded_samples_wanted": *samples,
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	enc.Encode(out)
}

func summary(ds []time.Duration) map[string]any {
	if len(ds) == 0 {
		return map[string]any{"n": 0}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	q := func(p float64) float64 { return ms(s[min(len(s)-1, int(p*float64(len(s))))]) }
	return map[string]any{
		"n": len(s), "min_ms": ms(s[0]), "p50_ms": q(0.5), "p90_ms": q(0.9),
		"max_ms": ms(s[len(s)-1]), "mean_ms": ms(sum / time.Duration(len(s))),
	}
}
