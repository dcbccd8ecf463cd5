package logging

import (
	"io"
	"sync"
	"time"
)

// Buffered collects log output in memory and writes it out in one system call when 64 KiB
// have gathered or every interval, whichever comes first. A busy token server logs two lines
// per request (the access line and the audit event); writing each on its own cost a system
// call apiece, about a tenth of what a reused token costs in CPU. The price is that a process
// killed without warning loses at most one interval of lines; a clean stop (Close) loses none.
type Buffered struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
	err error
	// closed: Close has run, and writes go straight through.
	closed bool
	stop   chan struct{}
	done   chan struct{}
}

// bufferSize is how much is gathered before a write.
const bufferSize = 64 << 10

// NewBuffered writes to w, flushing at least every interval.
func NewBuffered(w io.Writer, interval time.Duration) *Buffered {
	b := &Buffered{w: w, buf: make([]byte, 0, bufferSize), stop: make(chan struct{}), done: make(chan struct{})}
	go b.run(interval)
	return b
}

func (b *Buffered) run(interval time.Duration) {
	defer close(b.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			_ = b.Flush()
		case <-b.stop:
			return
		}
	}
}

// Write implements io.Writer. It reports the error of an earlier flush, once.
func (b *Buffered) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.err; err != nil {
		b.err = nil
		return 0, err
	}
	if b.closed {
		return b.w.Write(p)
	}
	if len(b.buf)+len(p) > cap(b.buf) {
		if err := b.flushLocked(); err != nil {
			return 0, err
		}
		if len(p) > cap(b.buf) {
			return b.w.Write(p)
		}
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

// Flush writes out what has gathered.
func (b *Buffered) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	err := b.flushLocked()
	if err != nil && b.err == nil {
		b.err = err
	}
	return err
}

func (b *Buffered) flushLocked() error {
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.w.Write(b.buf)
	b.buf = b.buf[:0]
	return err
}

// Close stops the periodic flush and writes out what is left. Later writes (a goroutine that
// logs while the process stops) go straight to the underlying writer, so none is lost.
func (b *Buffered) Close() error {
	select {
	case <-b.stop:
	default:
		close(b.stop)
	}
	<-b.done
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return b.flushLocked()
}
