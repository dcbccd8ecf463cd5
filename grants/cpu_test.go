package grants

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tokensmith/tokensmith/protocol"
)

func TestCPUGateBoundsConcurrency(t *testing.T) {
	for _, slots := range []int{1, 2, 4} {
		g := newCPUGate(slots)
		var running, peak atomic.Int32
		var wg sync.WaitGroup
		for range 64 {
			wg.Go(func() {
				err := g.do(context.Background(), spanSign, func() {
					n := running.Add(1)
					for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
					}
					for range 1000 {
						_ = n * n
					}
					running.Add(-1)
				})
				if err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if got := peak.Load(); got > int32(slots) {
			t.Errorf("%d slots: %d ran at once", slots, got)
		}
	}
}

func TestCPUGateGivesUpWithItsCaller(t *testing.T) {
	g := newCPUGate(1)
	hold := make(chan struct{})
	held := make(chan struct{})
	go func() { _ = g.do(context.Background(), spanSign, func() { close(held); <-hold }) }()
	<-held
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran := false
	err := g.do(ctx, spanSign, func() { ran = true })
	// ErrBusy: the HTTP layer must not take a caller that gave up here for a store outage.
	if ran || !errors.Is(err, &protocol.Error{Code: protocol.TemporarilyUnavailable}) || !errors.Is(err, context.Canceled) ||
		!errors.Is(err, ErrBusy) {
		t.Fatalf("cancelled waiter: ran %v, err %v; want temporarily_unavailable wrapping ErrBusy and context.Canceled", ran, err)
	}
	close(hold)
	if err := g.do(context.Background(), spanSign, func() { ran = true }); err != nil || !ran {
		t.Fatalf("after the holder left: ran %v, err %v", ran, err)
	}
}
