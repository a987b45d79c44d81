// Command echo-plain is the shortest Go echo server: one goroutine per connection copies what
// it reads back to the connection through a 32 KiB buffer (what io.Copy does between a plain
// reader and writer). -iocopy calls io.Copy(c, c) instead, which may take the splice path.
package main

import (
	"flag"
	"io"
	"net"

	"goway.bench/peers/internal/peer"
)

var (
	addr    = flag.String("addr", "127.0.0.1:7002", "address to listen on")
	bufSize = flag.Int("buf", 32<<10, "bytes of read buffer per connection")
	useCopy = flag.Bool("iocopy", false, "echo with io.Copy(c, c) instead of a read/write loop")
)

func main() {
	flag.Parse()
	ln := peer.Listen(*addr)
	go peer.AcceptLoop(ln, func(c net.Conn) { go echo(c) })
	peer.WaitForSignal()
	ln.Close()
}

func echo(c net.Conn) {
	defer c.Close()
	if *useCopy {
		io.Copy(c, c)
		return
	}
	buf := make([]byte, *bufSize)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
