// Command http-client is the Go client load of the harness's `client` scenario: -c
// goroutines each send GET -url in a loop over one shared http.Client (keep-alive, one idle
// connection kept per goroutine) for -d seconds after -warmup seconds, then it prints
//
//	RESULT rps=<requests/s> errors=<failed requests> requests=<measured requests>
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

var (
	url    = flag.String("url", "http://127.0.0.1:8080/plaintext", "URL to GET")
	conns  = flag.Int("c", 64, "goroutines, each with its own request loop")
	secs   = flag.Float64("d", 5, "seconds measured")
	warmup = flag.Float64("warmup", 1, "seconds of unmeasured load first")
)

func main() {
	flag.Parse()
	client := &http.Client{Transport: &http.Transport{
		MaxIdleConns:        *conns,
		MaxIdleConnsPerHost: *conns,
	}}
	var measuring, stop atomic.Bool
	var ok, bad atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < *conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				resp, err := client.Get(*url)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode >= 400 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if !measuring.Load() {
					continue
				}
				if err != nil {
					bad.Add(1)
				} else {
					ok.Add(1)
				}
			}
		}()
	}
	time.Sleep(time.Duration(*warmup * float64(time.Second)))
	measuring.Store(true)
	start := time.Now()
	time.Sleep(time.Duration(*secs * float64(time.Second)))
	n, e := ok.Load(), bad.Load()
	elapsed := time.Since(start).Seconds()
	stop.Store(true)
	wg.Wait()
	fmt.Fprintf(os.Stdout, "RESULT rps=%.0f errors=%d requests=%d\n", float64(n)/elapsed, e, n)
}
