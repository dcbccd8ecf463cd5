package embedded

import (
	"context"

	"github.com/tokensmith/tokensmith/storage"
)

// Publish implements storage.Storage: the one replica of an embedded store hears its own
// changes at once.
func (s *Store) Publish(_ context.Context, c storage.Change) error {
	s.mu.Lock()
	fns := make([]func(storage.Change), 0, len(s.watchers))
	for _, fn := range s.watchers {
		fns = append(fns, fn)
	}
	s.mu.Unlock()
	for _, fn := range fns {
		fn(c)
	}
	return nil
}

// Watch implements storage.Storage. The in-process feed never loses a change.
func (s *Store) Watch(ctx context.Context, fn func(storage.Change), healthy func(bool)) {
	healthy(true)
	s.mu.Lock()
	id := s.nextID
	s.nextID++
	s.watchers[id] = fn
	s.mu.Unlock()
	<-ctx.Done()
	s.mu.Lock()
	delete(s.watchers, id)
	s.mu.Unlock()
}
