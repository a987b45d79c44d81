// Package peer holds what every Go peer server of the benchmark harness shares: listening on
// the address given with -addr (over TLS with -tls-cert and -tls-key), and running until
// SIGTERM or SIGINT.
package peer

import (
	"crypto/tls"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
)

var (
	tlsCert = flag.String("tls-cert", "", "PEM certificate chain: serve TLS (with -tls-key)")
	tlsKey  = flag.String("tls-key", "", "PEM private key of -tls-cert")
)

// Listen opens a TCP listener on addr, or exits with status 1 and a message on stderr. With
// -tls-cert and -tls-key (read after flag.Parse), the listener is crypto/tls's: each accepted
// connection does its handshake on its first read or write, in its own goroutine, as
// http.ListenAndServeTLS's does (ALPN offers http/1.1 only: the benchmarks speak HTTP/1.1).
func Listen(addr string) net.Listener {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "listen %s: %v\n", addr, err)
		os.Exit(1)
	}
	if *tlsCert == "" && *tlsKey == "" {
		return ln
	}
	cert, err := tls.LoadX509KeyPair(*tlsCert, *tlsKey)
	if err != nil {
		fmt.Fprintf(os.Stderr, "tls: %v\n", err)
		os.Exit(1)
	}
	return tls.NewListener(ln, &tls.Config{
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"http/1.1"},
	})
}

// AcceptLoop hands every accepted connection to serve until the listener is closed.
// Temporary accept errors (such as running out of descriptors) are retried.
func AcceptLoop(ln net.Listener, serve func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			if isTemporary(err) {
				continue
			}
			return
		}
		serve(c)
	}
}

func isTemporary(err error) bool {
	t, ok := err.(interface{ Temporary() bool })
	return ok && t.Temporary()
}

// WaitForSignal blocks until the process gets SIGTERM or SIGINT.
func WaitForSignal() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
}
