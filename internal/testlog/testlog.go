// Package testlog is the log sink of tests: a buffer that a server, a process's output pipe or
// a logger writes from its own goroutines while the test reads it. Only tests import it.
package testlog

import (
	"bytes"
	"strings"
	"sync"
	"time"
)

// Buffer collects what is written to it; it is safe for concurrent use. The zero Buffer is
// empty and ready.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String is everything written since the start or the last Reset.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Reset forgets everything written so far.
func (b *Buffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Reset()
}

// HasWithin is how long Has waits.
const HasWithin = 5 * time.Second

// Has waits up to HasWithin for the output to contain s, and reports whether it did. What a
// server logs before it answers may reach the buffer a moment after the answer (through a
// pipe and a copying goroutine, or from a goroutine of its own), so a test looks for a line
// with Has rather than String.
func (b *Buffer) Has(s string) bool {
	for deadline := time.Now().Add(HasWithin); !strings.Contains(b.String(), s); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}
