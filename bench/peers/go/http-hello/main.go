// Command http-hello serves the two TechEmpower shapes with net/http:
//
//	GET /plaintext  Hello, World!                text/plain
//	GET /json       {"message":"Hello, World!"}  application/json, encoded per request
//
// and nothing is logged per request or connection.
package main

import (
	"encoding/json"
	"flag"
	"io"
	"log"
	"net/http"
	"strconv"

	"goway.bench/peers/internal/peer"
)

var addr = flag.String("addr", "127.0.0.1:7003", "address to listen on")

var hello = []byte("Hello, World!")

type greeting struct {
	Message string `json:"message"`
}

func main() {
	flag.Parse()
	mux := http.NewServeMux()
	mux.HandleFunc("/plaintext", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"] = []string{"text/plain"}
		h["Content-Length"] = []string{strconv.Itoa(len(hello))}
		w.Write(hello)
	})
	mux.HandleFunc("/json", func(w http.ResponseWriter, r *http.Request) {
		body, err := json.Marshal(greeting{Message: "Hello, World!"})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h["Content-Type"] = []string{"application/json"}
		h["Content-Length"] = []string{strconv.Itoa(len(body))}
		w.Write(body)
	})
	srv := &http.Server{Handler: mux, ErrorLog: log.New(io.Discard, "", 0)}
	ln := peer.Listen(*addr)
	go srv.Serve(ln)
	peer.WaitForSignal()
	srv.Close()
}
