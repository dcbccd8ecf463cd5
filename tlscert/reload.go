package tlscert

import (
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// reloading holds what load makes of some files, and makes it again when one of them changes:
// a look at the files at most once per checkEvery, on use, so no watcher is needed. A load
// that fails (a half-written renewal) is reported once, and the previous value stays in
// service until a good one appears.
type reloading[T any] struct {
	files []string
	load  func() (*T, error)
	log   *slog.Logger
	// loaded logs a value that replaced the previous one; failure is the warning for a change
	// that could not be loaded.
	loaded  func(log *slog.Logger, v *T)
	failure string
	value   atomic.Pointer[T]

	mu         sync.Mutex
	checked    time.Time
	seen       []os.FileInfo
	lastFailed bool
}

// start loads the files once; an error names the file and what is wrong with it.
func (r *reloading[T]) start() error {
	seen, err := r.stat()
	if err != nil {
		return err
	}
	v, err := r.load()
	if err != nil {
		return err
	}
	r.value.Store(v)
	r.seen, r.checked = seen, time.Now()
	return nil
}

// current is the value in service, loaded again first if a file changed.
func (r *reloading[T]) current() *T {
	r.refresh(time.Now())
	return r.value.Load()
}

// refresh loads the files again if one changed since the last look, at most once per
// checkEvery.
func (r *reloading[T]) refresh(now time.Time) {
	if !r.mu.TryLock() {
		return // another caller is looking; this one uses what is loaded
	}
	defer r.mu.Unlock()
	if now.Sub(r.checked) < checkEvery {
		return
	}
	r.checked = now
	seen, err := r.stat()
	if err != nil {
		r.failed(err)
		return
	}
	changed := false
	for i := range seen {
		changed = changed || !same(seen[i], r.seen[i])
	}
	if !changed {
		return
	}
	r.seen, r.lastFailed = seen, false
	v, err := r.load()
	if err != nil {
		r.failed(err)
		return
	}
	r.value.Store(v)
	r.loaded(r.log, v)
}

func (r *reloading[T]) failed(err error) {
	if !r.lastFailed {
		r.log.Warn(r.failure, "error", err)
	}
	r.lastFailed = true
}

func (r *reloading[T]) stat() ([]os.FileInfo, error) {
	out := make([]os.FileInfo, len(r.files))
	for i, name := range r.files {
		st, err := os.Stat(name)
		if err != nil {
			return nil, err
		}
		out[i] = st
	}
	return out, nil
}

// same reports whether two looks at a file saw the same content: the same file (a rename or
// a symlink swap gives a new one), modified at the same time, of the same size.
func same(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.ModTime().Equal(b.ModTime()) && a.Size() == b.Size()
}
