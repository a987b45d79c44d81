// Command resp-kv is a small Redis-protocol (RESP2) key-value server: PING [msg], ECHO msg,
// SET key value (options after the value are ignored), GET key, DEL key..., INCR key and
// QUIT, plus the replies redis-benchmark and redis-cli ask for at start-up (CONFIG GET name
// answers [name, ""], COMMAND an empty array). Requests are multibulk arrays or inline lines
// ("PING\r\n").
//
// One goroutine per connection reads requests through a bufio.Reader and writes replies into
// a bufio.Writer, which it flushes only once no further request bytes are buffered: a
// pipeline of N requests that arrives in one read is answered with one write. The keys live
// in one map behind a sync.RWMutex.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"io"
	"net"
	"strconv"
	"sync"

	"goway.bench/peers/internal/peer"
)

var addr = flag.String("addr", "127.0.0.1:7004", "address to listen on")

const (
	maxArgs    = 1 << 20
	maxBulkLen = 512 << 20
)

var errProtocol = errors.New("protocol error")

var (
	mu   sync.RWMutex
	data = map[string][]byte{}
)

func main() {
	flag.Parse()
	ln := peer.Listen(*addr)
	go peer.AcceptLoop(ln, func(c net.Conn) { go serve(c) })
	peer.WaitForSignal()
	ln.Close()
}

type session struct {
	r    *bufio.Reader
	w    *bufio.Writer
	args [][]byte
}

func serve(c net.Conn) {
	defer c.Close()
	s := &session{r: bufio.NewReaderSize(c, 16<<10), w: bufio.NewWriterSize(c, 16<<10)}
	for {
		args, err := s.readRequest()
		if err != nil {
			if err == errProtocol {
				s.w.WriteString("-ERR Protocol error\r\n")
				s.w.Flush()
			}
			return
		}
		quit := len(args) > 0 && s.execute(args)
		if quit || s.r.Buffered() == 0 {
			if s.w.Flush() != nil || quit {
				return
			}
		}
	}
}

// line reads one line and returns it without "\r\n" (or "\n"); it aliases the read buffer.
func (s *session) line() ([]byte, error) {
	l, err := s.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return nil, errProtocol
	}
	if err != nil {
		return nil, err
	}
	l = l[:len(l)-1]
	if len(l) > 0 && l[len(l)-1] == '\r' {
		l = l[:len(l)-1]
	}
	return l, nil
}

func (s *session) readRequest() ([][]byte, error) {
	first, err := s.line()
	if err != nil {
		return nil, err
	}
	s.args = s.args[:0]
	if len(first) == 0 || first[0] != '*' {
		for _, word := range bytes.Fields(first) {
			s.args = append(s.args, append([]byte(nil), word...))
		}
		return s.args, nil
	}
	n, ok := number(first[1:])
	if !ok || n > maxArgs {
		return nil, errProtocol
	}
	for i := 0; i < n; i++ {
		head, err := s.line()
		if err != nil {
			return nil, err
		}
		if len(head) == 0 || head[0] != '$' {
			return nil, errProtocol
		}
		size, ok := number(head[1:])
		if !ok || size > maxBulkLen {
			return nil, errProtocol
		}
		arg := make([]byte, size+2)
		if _, err := io.ReadFull(s.r, arg); err != nil {
			return nil, err
		}
		if arg[size] != '\r' || arg[size+1] != '\n' {
			return nil, errProtocol
		}
		s.args = append(s.args, arg[:size:size])
	}
	return s.args, nil
}

// number parses a non-negative decimal of at most 18 digits.
func number(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// execute runs one request and buffers its reply; it returns true for QUIT.
func (s *session) execute(args [][]byte) bool {
	w := s.w
	// The command name upper-cased in a stack buffer: a switch on string(b) does not
	// allocate. Names longer than the buffer are unknown anyway.
	var buf [8]byte
	name := buf[:0]
	if len(args[0]) <= len(buf) {
		for _, c := range args[0] {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			name = append(name, c)
		}
	}
	switch string(name) {
	case "GET":
		if len(args) != 2 {
			return arity(w, "get")
		}
		mu.RLock()
		v, ok := data[string(args[1])]
		mu.RUnlock()
		if ok {
			bulk(w, v)
		} else {
			w.WriteString("$-1\r\n")
		}
	case "SET":
		if len(args) < 3 {
			return arity(w, "set")
		}
		mu.Lock()
		data[string(args[1])] = args[2]
		mu.Unlock()
		w.WriteString("+OK\r\n")
	case "PING":
		switch len(args) {
		case 1:
			w.WriteString("+PONG\r\n")
		case 2:
			bulk(w, args[1])
		default:
			return arity(w, "ping")
		}
	case "ECHO":
		if len(args) != 2 {
			return arity(w, "echo")
		}
		bulk(w, args[1])
	case "DEL":
		if len(args) < 2 {
			return arity(w, "del")
		}
		removed := 0
		mu.Lock()
		for _, k := range args[1:] {
			if _, ok := data[string(k)]; ok {
				delete(data, string(k))
				removed++
			}
		}
		mu.Unlock()
		integer(w, int64(removed))
	case "INCR":
		if len(args) != 2 {
			return arity(w, "incr")
		}
		incr(w, string(args[1]))
	case "QUIT":
		w.WriteString("+OK\r\n")
		return true
	case "CONFIG":
		if len(args) == 3 && bytes.EqualFold(args[1], []byte("GET")) {
			w.WriteString("*2\r\n")
			bulk(w, args[2])
			bulk(w, nil)
		} else {
			w.WriteString("*0\r\n")
		}
	case "COMMAND":
		w.WriteString("*0\r\n")
	default:
		w.WriteString("-ERR unknown command '")
		for _, c := range args[0] {
			if c < ' ' || c > '~' {
				c = ' '
			}
			w.WriteByte(c)
		}
		w.WriteString("'\r\n")
	}
	return false
}

func incr(w *bufio.Writer, key string) {
	mu.Lock()
	var n int64
	if v, ok := data[key]; ok {
		cur, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			mu.Unlock()
			w.WriteString("-ERR value is not an integer or out of range\r\n")
			return
		}
		if cur == 1<<63-1 {
			mu.Unlock()
			w.WriteString("-ERR increment or decrement would overflow\r\n")
			return
		}
		n = cur
	}
	n++
	data[key] = strconv.AppendInt(nil, n, 10)
	mu.Unlock()
	integer(w, n)
}

func arity(w *bufio.Writer, cmd string) bool {
	w.WriteString("-ERR wrong number of arguments for '" + cmd + "' command\r\n")
	return false
}

func bulk(w *bufio.Writer, v []byte) {
	var head [24]byte
	h := strconv.AppendInt(append(head[:0], '$'), int64(len(v)), 10)
	w.Write(append(h, '\r', '\n'))
	w.Write(v)
	w.WriteString("\r\n")
}

func integer(w *bufio.Writer, n int64) {
	var buf [24]byte
	b := strconv.AppendInt(append(buf[:0], ':'), n, 10)
	w.Write(append(b, '\r', '\n'))
}
