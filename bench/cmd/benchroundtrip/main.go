// Command benchroundtrip does what the gateway does with its backend and
// nothing else: -c goroutines, each with a keep-alive HTTP/1.1 connection
// to -addr, write one GET at a time and read its answer with
// http.ReadResponse. It prints the requests done in -d. Pinned to the
// backend's core, it gives the floor a Go gateway's backend exchanges
// cost there, with the CPU of the process read from /proc/PID/stat
// (BENCHMARKS.md §11).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "the backend's address")
	conns := flag.Int("c", 32, "connections, one goroutine each")
	d := flag.Duration("d", 5*time.Second, "how long to run")
	path := flag.String("path", "/hello", "the path to GET")
	flag.Parse()

	req := []byte("GET " + *path + " HTTP/1.1\r\nHost: " + *addr + "\r\nUser-Agent: benchroundtrip\r\n\r\n")
	stop := time.Now().Add(*d)
	var done atomic.Int64
	var wg sync.WaitGroup
	for range *conns {
		c, err := net.Dial("tcp", *addr)
		if err != nil {
			log.Fatal(err)
		}
		wg.Go(func() {
			defer c.Close()
			br := bufio.NewReaderSize(c, 16<<10)
			for time.Now().Before(stop) {
				if _, err := c.Write(req); err != nil {
					log.Fatal(err)
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					log.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, resp.Body); err != nil {
					log.Fatal(err)
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	fmt.Println(done.Load())
}
