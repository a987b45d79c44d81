// Command echo-article is the echo server of the Go network model goway implements: per
// connection, a reader goroutine decodes newline-terminated frames and sends each one on a
// bounded channel, a handler goroutine passes it on (echo does not change it) to a second
// bounded channel, and a writer goroutine encodes it into a buffered writer, flushing
// whenever its channel is momentarily empty.
//
// Closing: the reader closes `in` at EOF or on a read error, the handler then closes `out`,
// and the writer flushes what is left and closes the connection. A write error makes the
// writer close the connection (which ends the reader) and drain `out` without writing, so
// that the handler never stays blocked.
package main

import (
	"bufio"
	"flag"
	"net"

	"goway.bench/peers/internal/peer"
)

var (
	addr     = flag.String("addr", "127.0.0.1:7001", "address to listen on")
	capacity = flag.Int("chan", 64, "capacity of each connection's in and out channels")
	rbufSize = flag.Int("rbuf", 16<<10, "bytes of read buffer per connection")
	wbufSize = flag.Int("wbuf", 16<<10, "bytes of write buffer per connection")
)

func main() {
	flag.Parse()
	ln := peer.Listen(*addr)
	go peer.AcceptLoop(ln, func(c net.Conn) {
		in := make(chan []byte, *capacity)
		out := make(chan []byte, *capacity)
		go readFrames(c, in)
		go handle(in, out)
		go writeFrames(c, out)
	})
	peer.WaitForSignal()
	ln.Close()
}

// readFrames sends every complete line (with its '\n') on in; an unterminated tail at EOF is
// dropped, as a framed protocol does.
func readFrames(c net.Conn, in chan<- []byte) {
	defer close(in)
	r := bufio.NewReaderSize(c, *rbufSize)
	for {
		// ReadBytes allocates the frame, so it can travel through the channels as is.
		frame, err := r.ReadBytes('\n')
		if err != nil {
			return
		}
		in <- frame
	}
}

// handle is the application: echo passes each frame on unchanged.
func handle(in <-chan []byte, out chan<- []byte) {
	defer close(out)
	for frame := range in {
		out <- frame
	}
}

// writeFrames writes frames into a buffer and flushes it when no further frame is waiting.
func writeFrames(c net.Conn, out <-chan []byte) {
	defer c.Close()
	w := bufio.NewWriterSize(c, *wbufSize)
	broken := false
	for {
		var frame []byte
		var ok bool
		select {
		case frame, ok = <-out:
		default:
			if !broken && w.Buffered() > 0 && w.Flush() != nil {
				broken = true
				c.Close()
			}
			frame, ok = <-out
		}
		if !ok {
			if !broken {
				w.Flush()
			}
			return
		}
		if broken {
			continue
		}
		if _, err := w.Write(frame); err != nil {
			broken = true
			c.Close()
		}
	}
}
