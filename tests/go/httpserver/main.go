// Command httpserver is the real net/http server the client and reverse-proxy tests of
// goway talk to. It listens on 127.0.0.1:0 (or -addr), prints "listening on <addr>", and
// serves:
//
//	GET  /hello          "hello"
//	POST /echo           the request body, read whole then sent back; X-Req-TE and X-Req-CL tell how it came
//	GET  /chunked?n=N    N pieces "piece i\n", each flushed (a chunked response)
//	GET  /big?n=BYTES    BYTES of 'x' in 16 KiB flushed pieces (chunked)
//	GET  /redirect/N     302 to /redirect/N-1; /redirect/0 answers "done"
//	GET  /headers        the request's header fields, one "Name: value" line each, sorted
//	GET  /conns          connections accepted so far
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
)

var addr = flag.String("addr", "127.0.0.1:0", "address to listen on")

func main() {
	flag.Parse()
	var conns int64
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Req-TE", strings.Join(r.TransferEncoding, ","))
		w.Header().Set("X-Req-CL", strconv.FormatInt(r.ContentLength, 10))
		// An HTTP/1 handler must read the body before it answers (net/http's rule).
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Write(body)
	})
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		f := w.(http.Flusher)
		for i := 0; i < n; i++ {
			fmt.Fprintf(w, "piece %d\n", i)
			f.Flush()
		}
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		piece := []byte(strings.Repeat("x", 16<<10))
		f := w.(http.Flusher)
		for n > 0 {
			k := len(piece)
			if n < k {
				k = n
			}
			if _, err := w.Write(piece[:k]); err != nil {
				return
			}
			f.Flush()
			n -= k
		}
	})
	mux.HandleFunc("/redirect/", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/redirect/"))
		if n <= 0 {
			io.WriteString(w, "done")
			return
		}
		http.Redirect(w, r, "/redirect/"+strconv.Itoa(n-1), http.StatusFound)
	})
	mux.HandleFunc("/headers", func(w http.ResponseWriter, r *http.Request) {
		var lines []string
		for k, vs := range r.Header {
			for _, v := range vs {
				lines = append(lines, k+": "+v)
			}
		}
		sort.Strings(lines)
		io.WriteString(w, strings.Join(lines, "\n"))
	})
	mux.HandleFunc("/conns", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, atomic.LoadInt64(&conns))
	})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	srv := &http.Server{
		Handler: mux,
		ConnState: func(c net.Conn, s http.ConnState) {
			if s == http.StateNew {
				atomic.AddInt64(&conns, 1)
			}
		},
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	srv.Serve(ln)
}
