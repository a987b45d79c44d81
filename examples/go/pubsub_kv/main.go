// pubsub_kv: a line-protocol key-value store with publish/subscribe, in the plain Go style:
// one goroutine per connection reading commands, one writer goroutine per connection fed by a
// channel, shared maps under a mutex, an idle timeout by read deadline, and a drain on SIGINT
// or SIGTERM that wakes every blocked reader by moving its deadline to now.
//
// Commands, one per line: SET key value | GET key | DEL key | SUB topic | PUB topic message |
// QUIT. Replies: "OK", the value, "(nil)", "(integer) n", "ERR ...". A subscriber receives
// "MESSAGE topic message" lines.
//
// goway's port is examples/pubsub_kv.rs; docs/porting-from-go.md shows the two side by side.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type server struct {
	mu       sync.Mutex
	data     map[string]string
	topics   map[string]map[*client]bool
	conns    map[*client]bool
	idle     time.Duration
	draining atomic.Bool
	wg       sync.WaitGroup
}

type client struct {
	conn net.Conn
	out  chan string
}

func main() {
	addr := flag.String("addr", "127.0.0.1:7890", "listen address")
	idle := flag.Duration("idle", 30*time.Second, "close a connection idle this long")
	flag.Parse()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	s := &server{
		data:   map[string]string{},
		topics: map[string]map[*client]bool{},
		conns:  map[*client]bool{},
		idle:   *idle,
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		fmt.Printf("%v: draining\n", sig)
		ln.Close()
		s.draining.Store(true)
		s.mu.Lock()
		for c := range s.conns {
			c.conn.SetReadDeadline(time.Now()) // wakes the blocked reader
		}
		s.mu.Unlock()
	}()

	for {
		conn, err := ln.Accept()
		if err != nil {
			break
		}
		s.wg.Add(1)
		go s.serve(conn)
	}
	s.wg.Wait()
	fmt.Println("drained")
}

func (s *server) serve(conn net.Conn) {
	defer s.wg.Done()
	c := &client{conn: conn, out: make(chan string, 64)}
	s.mu.Lock()
	s.conns[c] = true
	s.mu.Unlock()

	done := make(chan struct{})
	go func() { // the writer
		defer close(done)
		w := bufio.NewWriter(conn)
		for line := range c.out {
			w.WriteString(line + "\n")
			if len(c.out) == 0 {
				if w.Flush() != nil {
					break
				}
			}
		}
		for range c.out { // drain after a write error
		}
	}()

	sc := bufio.NewScanner(conn)
	for {
		conn.SetReadDeadline(time.Now().Add(s.idle))
		// Checked after the deadline is set: a drain that starts later moves it to now.
		if s.draining.Load() || !sc.Scan() {
			break
		}
		if !s.command(c, sc.Text()) {
			break
		}
	}

	s.mu.Lock()
	delete(s.conns, c)
	for _, subs := range s.topics {
		delete(subs, c)
	}
	s.mu.Unlock()
	close(c.out)
	<-done
	conn.Close()
}

// command runs one line; false ends the connection.
func (s *server) command(c *client, line string) bool {
	f := strings.Fields(line)
	if len(f) == 0 {
		return true
	}
	reply := func(r string) { c.out <- r }
	switch cmd := strings.ToUpper(f[0]); {
	case cmd == "SET" && len(f) >= 3:
		s.mu.Lock()
		s.data[f[1]] = strings.Join(f[2:], " ")
		s.mu.Unlock()
		reply("OK")
	case cmd == "GET" && len(f) == 2:
		s.mu.Lock()
		v, ok := s.data[f[1]]
		s.mu.Unlock()
		if ok {
			reply(v)
		} else {
			reply("(nil)")
		}
	case cmd == "DEL" && len(f) == 2:
		s.mu.Lock()
		_, ok := s.data[f[1]]
		delete(s.data, f[1])
		s.mu.Unlock()
		if ok {
			reply("(integer) 1")
		} else {
			reply("(integer) 0")
		}
	case cmd == "SUB" && len(f) == 2:
		s.mu.Lock()
		if s.topics[f[1]] == nil {
			s.topics[f[1]] = map[*client]bool{}
		}
		s.topics[f[1]][c] = true
		s.mu.Unlock()
		reply("OK")
	case cmd == "PUB" && len(f) >= 3:
		msg := "MESSAGE " + f[1] + " " + strings.Join(f[2:], " ")
		s.mu.Lock()
		n := 0
		for sub := range s.topics[f[1]] {
			select {
			case sub.out <- msg:
				n++
			default: // a subscriber that does not keep up misses messages
			}
		}
		s.mu.Unlock()
		reply(fmt.Sprintf("(integer) %d", n))
	case cmd == "QUIT":
		reply("OK")
		return false
	default:
		reply(fmt.Sprintf("ERR unknown command or wrong arguments: %q", line))
	}
	return true
}
