// Package peer holds what every Go peer server of the benchmark harness shares: listening on
// the address given with -addr, and running until SIGTERM or SIGINT.
package peer

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
)

// Listen opens a TCP listener on addr, or exits with status 1 and a message on stderr.
func Listen(addr string) net.Listener {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "listen %s: %v\n", addr, err)
		os.Exit(1)
	}
	return ln
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
