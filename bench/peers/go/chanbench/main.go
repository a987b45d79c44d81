// Command chanbench times Go's channels and goroutine spawning, and prints one
// machine-readable line per benchmark so that other implementations (goway's
// examples/chanbench.rs, bench/peers/rust's rust-chanbench) can print the same lines and be
// put beside it in one table:
//
//	# chanbench impl=go go=go1.19.8 gomaxprocs=2 reps=5
//	RESULT <name> <median> <unit> reps=<n> min=<v> max=<v> n=<operations per rep>
//
// The benchmarks, by their stable names:
//
//	unbuf_pingpong_rtt  ns/rtt  two goroutines and two unbuffered channels; one round trip
//	                            is a send on the first and a receive on the second
//	buf128_spsc         ns/msg  one producer, one consumer, a channel of capacity 128
//	buf128_mpmc_4x4     ns/msg  four producers and four consumers on one channel of
//	                            capacity 128 (all messages / wall time)
//	select2             ns/op   one consumer selects over two channels of capacity 128,
//	                            each with its own producer; an op is one received message
//	spawn_join_100k     ms      start 100 000 goroutines that each call wg.Done, and wait
//
// Each value is the median of -reps timed runs, after one untimed run with a tenth of the
// operations; the garbage collector runs before each timed run. GOMAXPROCS is -procs (2).
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
	"sync"
	"time"
)

var (
	procs = flag.Int("procs", 2, "GOMAXPROCS (0 leaves the runtime's default)")
	reps  = flag.Int("reps", 5, "timed runs per benchmark; the median is printed")
	scale = flag.Float64("scale", 1.0, "factor applied to the operation counts")
	only  = flag.String("only", "", "run only the benchmark of this name")
	spawn = flag.Int("spawn", 100000, "goroutines started by spawn_join_100k")
)

// sink keeps the compiler from discarding the sums the consumers compute.
var sink int64

func pingPong(n int) time.Duration {
	ping, pong := make(chan int), make(chan int)
	go func() {
		for v := range ping {
			pong <- v
		}
		close(pong)
	}()
	start := time.Now()
	for i := 0; i < n; i++ {
		ping <- i
		<-pong
	}
	elapsed := time.Since(start)
	close(ping)
	<-pong
	return elapsed
}

func spsc(n int) time.Duration {
	ch := make(chan int, 128)
	sum := make(chan int64)
	go func() {
		var s int64
		for v := range ch {
			s += int64(v)
		}
		sum <- s
	}()
	start := time.Now()
	for i := 0; i < n; i++ {
		ch <- i
	}
	close(ch)
	sink += <-sum
	return time.Since(start)
}

func mpmc(n, producers, consumers int) time.Duration {
	ch := make(chan int, 128)
	gate := make(chan struct{})
	var sent, received sync.WaitGroup
	sums := make([]int64, consumers)
	sent.Add(producers)
	for p := 0; p < producers; p++ {
		go func() {
			defer sent.Done()
			<-gate
			for i := 0; i < n/producers; i++ {
				ch <- i
			}
		}()
	}
	received.Add(consumers)
	for c := 0; c < consumers; c++ {
		go func(c int) {
			defer received.Done()
			var s int64
			for v := range ch {
				s += int64(v)
			}
			sums[c] = s
		}(c)
	}
	start := time.Now()
	close(gate)
	sent.Wait()
	close(ch)
	received.Wait()
	elapsed := time.Since(start)
	for _, s := range sums {
		sink += s
	}
	return elapsed
}

func select2(n int) time.Duration {
	a, b := make(chan int, 128), make(chan int, 128)
	gate := make(chan struct{})
	half := n / 2
	produce := func(ch chan<- int) {
		<-gate
		for i := 0; i < half; i++ {
			ch <- i
		}
	}
	go produce(a)
	go produce(b)
	start := time.Now()
	close(gate)
	var s int64
	for got := 0; got < 2*half; got++ {
		select {
		case v := <-a:
			s += int64(v)
		case v := <-b:
			s -= int64(v)
		}
	}
	elapsed := time.Since(start)
	sink += s
	return elapsed
}

func spawnJoin(n int) time.Duration {
	var wg sync.WaitGroup
	start := time.Now()
	wg.Add(n)
	for i := 0; i < n; i++ {
		go wg.Done()
	}
	wg.Wait()
	return time.Since(start)
}

type benchmark struct {
	name, unit string
	ops        int
	perOp      bool // true: ns per operation; false: ms per run
	run        func(int) time.Duration
}

func scaled(n int) int {
	if v := int(float64(n) * *scale); v > 1 {
		return v
	}
	return 1
}

func main() {
	flag.Parse()
	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}
	all := []benchmark{
		{"unbuf_pingpong_rtt", "ns/rtt", scaled(500000), true, pingPong},
		{"buf128_spsc", "ns/msg", scaled(5000000), true, spsc},
		{"buf128_mpmc_4x4", "ns/msg", scaled(4000000), true, func(n int) time.Duration { return mpmc(n, 4, 4) }},
		{"select2", "ns/op", scaled(4000000), true, select2},
		{"spawn_join_100k", "ms", *spawn, false, spawnJoin},
	}
	fmt.Printf("# chanbench impl=go go=%s gomaxprocs=%d reps=%d\n", runtime.Version(), runtime.GOMAXPROCS(0), *reps)
	ran := 0
	for _, b := range all {
		if *only != "" && *only != b.name {
			continue
		}
		ran++
		warm := b.ops / 10
		if warm < 1 {
			warm = 1
		}
		b.run(warm)
		values := make([]float64, 0, *reps)
		for r := 0; r < *reps; r++ {
			runtime.GC()
			ns := float64(b.run(b.ops).Nanoseconds())
			if b.perOp {
				values = append(values, ns/float64(b.ops))
			} else {
				values = append(values, ns/1e6)
			}
		}
		if len(values) == 0 {
			continue
		}
		sort.Float64s(values)
		fmt.Printf("RESULT %s %.2f %s reps=%d min=%.2f max=%.2f n=%d\n",
			b.name, values[len(values)/2], b.unit, len(values), values[0], values[len(values)-1], b.ops)
	}
	if ran == 0 {
		fmt.Fprintf(os.Stderr, "no benchmark named %q\n", *only)
		os.Exit(2)
	}
	if sink == 1 {
		fmt.Fprintln(os.Stderr)
	}
}
