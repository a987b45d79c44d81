// Package syncbench is Go's side of goway's sync and context micro-benchmarks
// (benches/sync.rs): the same operations, one benchmark each. Run from bench/peers/go:
//
//	GOMAXPROCS=2 go test ./syncbench -bench . -benchtime 2s
package syncbench

import (
	"context"
	"sync"
	"testing"
	"time"
)

func BenchmarkMutexUncontended(b *testing.B) {
	var mu sync.Mutex
	n := 0
	for i := 0; i < b.N; i++ {
		mu.Lock()
		n++
		mu.Unlock()
	}
}

func BenchmarkMutexContended4(b *testing.B) {
	var mu sync.Mutex
	n := 0
	var wg sync.WaitGroup
	start := make(chan struct{})
	per := (b.N + 3) / 4
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := 0; i < per; i++ {
				mu.Lock()
				n++
				mu.Unlock()
			}
		}()
	}
	b.ResetTimer()
	close(start)
	wg.Wait()
}

func BenchmarkRWMutexReadUncontended(b *testing.B) {
	var mu sync.RWMutex
	for i := 0; i < b.N; i++ {
		mu.RLock()
		mu.RUnlock()
	}
}

func BenchmarkRWMutexReadContended4(b *testing.B) {
	var mu sync.RWMutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	per := (b.N + 3) / 4
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := 0; i < per; i++ {
				mu.RLock()
				mu.RUnlock()
			}
		}()
	}
	b.ResetTimer()
	close(start)
	wg.Wait()
}

func BenchmarkWaitGroupAddDoneWait(b *testing.B) {
	var wg sync.WaitGroup
	for i := 0; i < b.N; i++ {
		wg.Add(1)
		wg.Done()
		wg.Wait()
	}
}

func BenchmarkWaitGroup10k(b *testing.B) {
	for i := 0; i < b.N; i++ {
		var wg sync.WaitGroup
		wg.Add(10000)
		for j := 0; j < 10000; j++ {
			go func() { wg.Done() }()
		}
		wg.Wait()
	}
}

func BenchmarkWithCancelCancelBackground(b *testing.B) {
	bg := context.Background()
	for i := 0; i < b.N; i++ {
		_, cancel := context.WithCancel(bg)
		cancel()
	}
}

func BenchmarkWithCancelCancelCancellableParent(b *testing.B) {
	parent, cancelP := context.WithCancel(context.Background())
	defer cancelP()
	for i := 0; i < b.N; i++ {
		_, cancel := context.WithCancel(parent)
		cancel()
	}
}

func BenchmarkWithTimeoutCancelCancellableParent(b *testing.B) {
	parent, cancelP := context.WithCancel(context.Background())
	defer cancelP()
	for i := 0; i < b.N; i++ {
		_, cancel := context.WithTimeout(parent, time.Hour)
		cancel()
	}
}

func BenchmarkWithCancelDoneCancelRecv(b *testing.B) {
	bg := context.Background()
	for i := 0; i < b.N; i++ {
		ctx, cancel := context.WithCancel(bg)
		d := ctx.Done()
		cancel()
		<-d
	}
}

type key struct{}

func BenchmarkValueLookupDepth4(b *testing.B) {
	ctx := context.WithValue(context.Background(), key{}, uint64(1))
	for i := 0; i < 3; i++ {
		ctx = context.WithValue(ctx, i, i)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = ctx.Value(key{})
	}
}
