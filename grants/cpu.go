package grants

import (
	"context"
	"fmt"
	"runtime"

	"github.com/tokensmith/tokensmith/protocol"
	"go.opentelemetry.io/otel/codes"
	"golang.org/x/sync/semaphore"
)

// cpuGate admits the CPU-heavy step of a request (an RSA signature, a bcrypt comparison) at
// most GOMAXPROCS at a time, in the order the requests reached it. Without it, every request
// in flight computes at once and the Go scheduler decides who finishes first: under
// saturation most answers are quick while some wait many times longer (measured at c=16 on
// two cores: p50 2 ms, p99 45 ms, 4.5 × the mean time in the server). With it, a request
// waits its turn and then has a core: the same throughput, and a p99 about twice that mean
// (docs/benchmark.md).
//
// The gate is here, around the calls, rather than in keys: it bounds bcrypt as well as
// signing, and both share the same cores.
type cpuGate struct {
	sem *semaphore.Weighted
	// spans records the wait and the work as two spans, so a trace tells a saturated server
	// (a long wait) from a slow signer.
	spans spans
}

func newCPUGate(n int) *cpuGate {
	if n < 1 {
		n = runtime.GOMAXPROCS(0)
	}
	// semaphore.Weighted queues waiters first in, first out, and a newcomer never overtakes
	// one that is waiting.
	return &cpuGate{sem: semaphore.NewWeighted(int64(n))}
}

// do runs fn, the step named op (a span name), once a slot is free. It fails only when ctx ends
// while waiting (the caller gave up), and then fn does not run.
func (g *cpuGate) do(ctx context.Context, op string, fn func()) error {
	_, wait := g.spans.start(ctx, spanGate)
	if err := g.sem.Acquire(ctx, 1); err != nil {
		wait.SetStatus(codes.Error, "gave up waiting")
		wait.End()
		return protocol.Wrap(protocol.TemporarilyUnavailable, "the server is busy, retry shortly", fmt.Errorf("%w: %w", ErrBusy, err))
	}
	defer g.sem.Release(1)
	// A waiter woken by Release runs next on the releasing processor, ahead of requests that
	// have just arrived (the network poller puts them on the global run queue, which a busy
	// processor looks at rarely). Those would reach the gate late, and the gate's order would
	// not be the arrival order. Yielding once puts this goroutine behind them: they parse
	// their request and queue here, in the order they came.
	runtime.Gosched()
	wait.End()
	_, work := g.spans.start(ctx, op)
	fn()
	work.End()
	return nil
}
