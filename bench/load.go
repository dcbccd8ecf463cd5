package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// measured is what one scenario run produced.
type measured struct {
	requests int
	errors   int
	firstErr string
	window   time.Duration
	lat      []time.Duration // of the requests that ended in the window, sorted
	cpu      time.Duration   // server CPU over the window
	redisCPU time.Duration   // its Redis's CPU over the window
	peakRSS  int64
	// parts is the resident set as the window ends, split by what it holds.
	parts rssParts
	// others is the share of the machine's CPU that neither the server nor the load
	// generator used during the window: other people's work on a shared machine.
	others float64
}

// newHTTPClient keeps one connection per worker alive, as an integrator's client would; over
// TLS (conf not nil) that is one handshake per connection, not per request.
func newHTTPClient(c int, conf *tls.Config) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns: c * 2, MaxIdleConnsPerHost: c * 2, IdleConnTimeout: time.Minute,
			DisableCompression: true, ForceAttemptHTTP2: false, TLSClientConfig: conf,
		},
	}
}

// run drives s with c workers: warm-up first, then the measured window of length d, in which
// latencies, errors and the server's CPU time and peak resident set are taken. A request
// counts in the window it ends in. On a TLS server the workers present cert, if not nil.
func run(s *server, label string, nw newWorker, cert *tls.Certificate, c int, warm, d time.Duration, prof profiles, progress io.Writer) (measured, error) {
	hc := newHTTPClient(c, s.clientTLS(cert))
	defer hc.CloseIdleConnections()
	steps := make([]step, c)
	for i := range steps {
		st, err := nw(i, hc)
		if err != nil {
			return measured{}, fmt.Errorf("worker %d set-up: %w", i, err)
		}
		steps[i] = st
	}
	type workerLog struct {
		lat      []time.Duration
		errors   int
		firstErr string
	}
	logs := make([]workerLog, c)
	var (
		stop        atomic.Bool
		done        atomic.Int64
		failed      atomic.Int64
		wg          sync.WaitGroup
		windowStart atomic.Int64 // unix nanos; 0 until the warm-up ends
		windowEnd   atomic.Int64
	)
	windowEnd.Store(1<<63 - 1)
	for i := range c {
		wg.Go(func() {
			l := &logs[i]
			for !stop.Load() {
				t0 := time.Now()
				err := steps[i]()
				t1 := time.Now()
				done.Add(1)
				if err != nil {
					failed.Add(1)
				}
				ws := windowStart.Load()
				if ws == 0 || t1.UnixNano() < ws || t1.UnixNano() > windowEnd.Load() {
					continue
				}
				l.lat = append(l.lat, t1.Sub(t0))
				if err != nil {
					l.errors++
					if l.firstErr == "" {
						l.firstErr = err.Error()
					}
				}
			}
		})
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	begin := time.Now()
	show := func(phase string) {
		if progress == nil {
			return
		}
		el := time.Since(begin)
		fmt.Fprintf(progress, "\r  %-52s %-7s %5.1fs/%.0fs  %7d requests  %5d errors ", label, phase,
			el.Seconds(), (warm + d).Seconds(), done.Load(), failed.Load())
	}
	for time.Since(begin) < warm {
		<-tick.C
		show("warm-up")
	}
	var m measured
	before, err := s.usage()
	if err != nil {
		stop.Store(true)
		wg.Wait()
		return m, err
	}
	s.resetPeak()
	start := time.Now()
	windowStart.Store(start.UnixNano())
	profiled := prof.take(s, d)
	for time.Since(start) < d {
		<-tick.C
		show("measure")
		if err := s.alive(); err != nil {
			stop.Store(true)
			wg.Wait()
			return m, err
		}
	}
	end := time.Now()
	windowEnd.Store(end.UnixNano())
	after, err := s.usage()
	m.peakRSS = s.peakRSS()
	m.parts = s.rssParts()
	stop.Store(true)
	wg.Wait()
	if perr := profiled(); perr != nil {
		// An older server (-baseline) may have no pprof: the measurement stands without it.
		fmt.Fprintf(os.Stderr, "\n  no profile of %s: %v\n", label, perr)
	}
	if progress != nil {
		fmt.Fprintf(progress, "\r%120s\r", "")
	}
	if err != nil {
		return m, err
	}
	m.window = end.Sub(start)
	m.cpu = after.cpu - before.cpu
	m.redisCPU = after.redis - before.redis
	ours := m.cpu + m.redisCPU + after.self - before.self
	m.others = max(float64(after.busy-before.busy-ours), 0) / float64(m.window*time.Duration(runtime.NumCPU()))
	for _, l := range logs {
		m.lat = append(m.lat, l.lat...)
		m.errors += l.errors
		if m.firstErr == "" {
			m.firstErr = l.firstErr
		}
	}
	slices.Sort(m.lat)
	m.requests = len(m.lat)
	return m, nil
}

// quantile is the q-quantile of sorted latencies (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// isTerminal reports whether f is a terminal, where a progress line that rewrites itself is
// readable; elsewhere (a CI log, a pipe) it would be noise.
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
