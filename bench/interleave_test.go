package bench

import (
	"sync"
	"testing"
	"time"
)

// interleave times the candidates in alternation, block calls at a time
// split over par goroutines, once per b.Loop round, so that they share the
// machine's load of the moment (the test machine is busy and noisy). It
// reports each candidate's ns per call and its ratio to the first.
func interleave(b *testing.B, par, block int, names []string, fns ...func(g, i int)) {
	b.Helper()
	total := make([]time.Duration, len(fns))
	calls := 0
	for b.Loop() {
		for j, fn := range fns {
			start := time.Now()
			var wg sync.WaitGroup
			for g := range par {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range block / par {
						fn(g, i+g*7919)
					}
				}()
			}
			wg.Wait()
			total[j] += time.Since(start)
		}
		calls += block
	}
	for j, name := range names {
		ns := float64(total[j].Nanoseconds()) / float64(calls)
		b.ReportMetric(ns, name+"-ns/op")
		if j > 0 {
			b.ReportMetric(float64(total[j])/float64(total[0]), name+"/"+names[0])
		}
	}
}
