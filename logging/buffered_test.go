package logging

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

type countingWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
	fail   bool
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fail {
		return 0, errors.New("disk full")
	}
	w.writes++
	return w.buf.Write(p)
}

func (w *countingWriter) state() (string, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String(), w.writes
}

func TestBufferedGathersWrites(t *testing.T) {
	w := &countingWriter{}
	b := NewBuffered(w, time.Hour)
	line := strings.Repeat("x", 99) + "\n"
	for range 1000 {
		if _, err := b.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	out, writes := w.state()
	if out != strings.Repeat(line, 1000) {
		t.Fatalf("lost or reordered output: %d bytes, want %d", len(out), 100*1000)
	}
	// 100,000 bytes through a 64 KiB buffer: two writes, not a thousand.
	if writes != 2 {
		t.Fatalf("%d writes, want 2", writes)
	}
	big := strings.Repeat("y", bufferSize+1)
	if _, err := b.Write([]byte(big)); err != nil {
		t.Fatal(err)
	}
	if out, _ := w.state(); !strings.HasSuffix(out, big) {
		t.Fatal("a write larger than the buffer was not passed through")
	}
}

// TestBufferedAfterClose: a line logged after Close (a goroutine still stopping) is written
// at once, not left in a buffer nobody flushes.
func TestBufferedAfterClose(t *testing.T) {
	w := &countingWriter{}
	b := NewBuffered(w, time.Hour)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Write([]byte("late\n")); err != nil {
		t.Fatal(err)
	}
	if out, _ := w.state(); out != "late\n" {
		t.Fatalf("after Close the writer has %q, want the late line", out)
	}
}

func TestBufferedFlushesOnItsOwn(t *testing.T) {
	w := &countingWriter{}
	b := NewBuffered(w, 10*time.Millisecond)
	defer b.Close()
	_, _ = b.Write([]byte("hello\n"))
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if out, _ := w.state(); out == "hello\n" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("not flushed within 5 s at a 10 ms interval")
		}
	}
}

func TestBufferedReportsAFailedFlush(t *testing.T) {
	w := &countingWriter{fail: true}
	b := NewBuffered(w, time.Hour)
	_, _ = b.Write([]byte("lost\n"))
	if err := b.Flush(); err == nil {
		t.Fatal("flush to a failing writer succeeded")
	}
	if _, err := b.Write([]byte("next\n")); err == nil {
		t.Fatal("the failed flush was not reported to the next write")
	}
	b.Close()
}
