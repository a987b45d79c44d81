// Command reverse-proxy is Go's httputil.ReverseProxy in front of -upstream, the Go peer of
// the harness's `proxy` scenario (goway's is examples/reverse_proxy.rs). Idle keep-alive
// connections to the upstream: up to -max-idle.
package main

import (
	"flag"
	"io"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"

	"goway.bench/peers/internal/peer"
)

var (
	addr     = flag.String("addr", "127.0.0.1:8081", "address to listen on")
	upstream = flag.String("upstream", "http://127.0.0.1:8080", "upstream base URL")
	maxIdle  = flag.Int("max-idle", 256, "idle connections kept to the upstream")
)

func main() {
	flag.Parse()
	target, err := url.Parse(*upstream)
	if err != nil {
		log.New(os.Stderr, "", 0).Fatalf("bad -upstream: %v", err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = &http.Transport{
		MaxIdleConns:        *maxIdle,
		MaxIdleConnsPerHost: *maxIdle,
	}
	proxy.ErrorLog = log.New(io.Discard, "", 0)
	srv := &http.Server{Handler: proxy, ErrorLog: log.New(io.Discard, "", 0)}
	ln := peer.Listen(*addr)
	go srv.Serve(ln)
	peer.WaitForSignal()
	srv.Close()
}
