package cmd

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/backup"
	"github.com/tokensmith/tokensmith/storage/embedded"
)

// syncBuffer is a bytes.Buffer safe for the progress goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestProgressLine: a run that lasts says what it is doing, and stops saying it when it ends.
func TestProgressLine(t *testing.T) {
	t.Parallel()
	s, err := embedded.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out syncBuffer
	p := &backup.Progress{}
	stop := showProgress(&out, "export", p, 10*time.Millisecond)
	if _, err := backup.Export(context.Background(), s, io.Discard, backup.ExportOptions{Progress: p}); err != nil {
		t.Fatal(err)
	}
	// The last line names the stage the run ended in, whichever kind the document ends with.
	stage, kind, n := p.Status()
	last := fmt.Sprintf("export: %s %s, %d records so far\n", stage, strings.ReplaceAll(kind, "_", " "), n)
	if stage == "" || kind == "" {
		t.Fatalf("progress after the run: stage %q kind %q", stage, kind)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), last) {
		if time.Now().After(deadline) {
			t.Fatalf("no progress line %q in %q", last, out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	stop()
	said := out.String()
	time.Sleep(30 * time.Millisecond)
	if out.String() != said {
		t.Fatal("the progress line goes on after the run ended")
	}
}

// TestImportReadsAFileTwice: a file on standard input is read as it is, and refused if it
// changes between the check and the write; a pipe is copied first.
func TestImportReadsAFileTwice(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "backup.json")
	if err := os.WriteFile(path, []byte("first"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, done, err := seekableInput(f)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	if b, _ := io.ReadAll(doc); string(b) != "first" {
		t.Fatalf("read %q", b)
	}
	if _, err := doc.Seek(0, io.SeekStart); err != nil {
		t.Fatalf("reading the unchanged file again: %v", err)
	}
	if err := os.WriteFile(path, []byte("second, longer"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := doc.Seek(0, io.SeekStart); err == nil || !strings.Contains(err.Error(), "changed") {
		t.Fatalf("reading a changed file again: %v, want an error", err)
	}

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = w.Write([]byte("piped")); w.Close() }()
	doc, done, err = seekableInput(r)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	for range 2 {
		if b, _ := io.ReadAll(doc); string(b) != "piped" {
			t.Fatalf("read %q from a pipe", b)
		}
		if _, err := doc.Seek(0, io.SeekStart); err != nil {
			t.Fatal(err)
		}
	}
	if tmp, ok := doc.(*os.File); !ok || tmp.Name() == "" {
		t.Fatalf("a pipe was not copied to a file: %T", doc)
	} else if _, err := os.Stat(tmp.Name()); !os.IsNotExist(err) {
		t.Errorf("the copy of standard input is still reachable by name: %v", err)
	}
}
