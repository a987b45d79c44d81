// Command udp-echo is Go's UDP echo server for the benchmark harness: one socket from
// net.ListenUDP, and -readers goroutines (default GOMAXPROCS) each looping on ReadFrom and
// WriteTo, every datagram sent back unchanged to its sender. It is what goway's
// examples/udp_echo.rs ports.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"

	"goway.bench/peers/internal/peer"
)

var (
	addr    = flag.String("addr", "127.0.0.1:7003", "address to listen on")
	readers = flag.Int("readers", 0, "goroutines reading the socket (0: GOMAXPROCS)")
)

func main() {
	flag.Parse()
	ua, err := net.ResolveUDPAddr("udp", *addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "resolve %s: %v\n", *addr, err)
		os.Exit(1)
	}
	c, err := net.ListenUDP("udp", ua)
	if err != nil {
		fmt.Fprintf(os.Stderr, "listen %s: %v\n", *addr, err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s\n", c.LocalAddr())
	n := *readers
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	for i := 0; i < n; i++ {
		go echo(c)
	}
	peer.WaitForSignal()
	c.Close()
}

func echo(c *net.UDPConn) {
	// Any UDP datagram fits whole.
	buf := make([]byte, 65536)
	for {
		// The netip forms allocate nothing per datagram (ReadFromUDP allocates a *UDPAddr).
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		// A failed send costs this datagram only.
		c.WriteToUDPAddrPort(buf[:n], from)
	}
}
