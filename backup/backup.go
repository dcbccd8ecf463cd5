// Package backup is tokensmith export and import: every record a move to another store must
// keep for the credentials issued so far to go on working, as one versioned JSON document
// (format.go), written and read a record at a time.
//
// What travels: signing keys (with their schedule), clients, deletion notes of clients, users
// with their personal tokens, live refresh families and refresh tokens (rotation state and
// revocation included), and the access-token deny-list. Secrets travel as the store keeps
// them, as digests (the signing keys' private halves excepted: they must sign). What does not
// travel: reuse pools (a pool refills, and a pooled token is a usable credential), daily and
// hourly counts, failed-login counts, console sessions, replica heartbeats and the change
// feed, and the audit trail, which is not in the store.
//
// Import reads the document twice: a first pass checks all of it (syntax, version, every
// record, count and digest) and asks the store, without writing, what each record would
// change; only a document that passes, with no record that conflicts with the store, is read
// again and written. Each record is written in one atomic step, so an import that stops
// midway (the store went away) leaves whole records, and running it again finishes it: what
// is already there is unchanged.
package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokensmith/tokensmith/storage"
)

// Progress is how far an export or import has got, for a progress line.
type Progress struct {
	mu    sync.Mutex
	stage string
	kind  string
	n     atomic.Int64
}

func (p *Progress) set(stage, kind string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stage, p.kind = stage, kind
}

func (p *Progress) add() {
	if p != nil {
		p.n.Add(1)
	}
}

// Status is what is being done ("exporting", "checking", "writing"), to which kind of record,
// and how many records have been handled so far.
func (p *Progress) Status() (stage, kind string, records int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stage, p.kind, p.n.Load()
}

// Counts is how many records of each kind were handled.
type Counts map[string]int64

// ExportOptions tune Export.
type ExportOptions struct {
	// Now decides which records have expired (left out); default time.Now.
	Now time.Time
	// Tokensmith is the writing build's version, recorded in the header.
	Tokensmith string
	Progress   *Progress
}

// Export writes the whole store to w as one document and returns how many records of each
// kind it wrote.
func Export(ctx context.Context, s Store, w io.Writer, o ExportOptions) (Counts, error) {
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	dw, err := newWriter(w, Header{Format: Format, Version: Version, ExportedAt: o.Now.UTC(), Tokensmith: o.Tokensmith})
	if err != nil {
		return nil, err
	}
	counts := Counts{}
	for _, sec := range sections {
		o.Progress.set("exporting", sec.name)
		if err := dw.open(sec.name); err != nil {
			return counts, err
		}
		err := sec.export(ctx, s, o.Now, func(v any) error {
			counts[sec.name]++
			if u, ok := v.(userRecord); ok {
				counts[PersonalTokens] += int64(len(u.PersonalTokens))
			}
			o.Progress.add()
			return dw.record(v)
		})
		if err != nil {
			return counts, fmt.Errorf("exporting %s: %w", strings.ReplaceAll(sec.name, "_", " "), err)
		}
		if err := dw.close(); err != nil {
			return counts, err
		}
	}
	return counts, dw.finish()
}

// ImportOptions tune Import.
type ImportOptions struct {
	// DryRun checks the document and reports what an import would change, writing nothing.
	DryRun bool
	// Now is the clock records are restored on; default time.Now.
	Now      func() time.Time
	Progress *Progress
	// Bulk, when set, is called before the records are written and returns the function to
	// call after: a store's way to write many records at once faster (embedded.Store.Bulk).
	Bulk func() (done func() error, err error)
}

// Report is what an import changed (or, on a dry run, would change), by kind of record.
type Report struct {
	Header   Header
	DryRun   bool
	Outcomes map[string]map[storage.Outcome]int64
	// Warnings are things the operator should know that did not stop the import.
	Warnings []string
}

func (r *Report) tally(kind string, out storage.Outcome) {
	if r.Outcomes[kind] == nil {
		r.Outcomes[kind] = map[storage.Outcome]int64{}
	}
	r.Outcomes[kind][out]++
}

// maxConflicts is how many conflicting records an import refusal names.
const maxConflicts = 10

// Import reads a document from doc and restores it into s (see the package comment for the
// two passes). doc is read twice, so it must seek back to its start.
func Import(ctx context.Context, s Store, doc io.ReadSeeker, o ImportOptions) (rep Report, err error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	known := func(name string) bool {
		return slices.ContainsFunc(sections, func(sec section) bool { return sec.name == name })
	}
	// mu guards what the workers report: outcomes, conflicts, changes to announce.
	var mu sync.Mutex
	restoreOne := func(r *restorer) func(string, int, json.RawMessage) error {
		return func(name string, n int, raw json.RawMessage) error {
			o.Progress.set(o.Progress.stageOf(r.dryRun), name)
			o.Progress.add()
			i := slices.IndexFunc(sections, func(sec section) bool { return sec.name == name })
			return recordErr(name, n, sections[i].restore(r, raw))
		}
	}

	// First pass: check everything, ask the store what would change.
	plan := Report{DryRun: true, Outcomes: map[string]map[storage.Outcome]int64{}}
	var conflicts []string
	nConflicts := 0
	docKeys := map[string]bool{}
	check := restoreOne(&restorer{ctx: ctx, store: s, dryRun: true, now: o.Now, tally: func(kind string, out storage.Outcome) {
		mu.Lock()
		defer mu.Unlock()
		plan.tally(kind, out)
	}})
	pool := startWorkers(func(name string, n int, raw json.RawMessage) error {
		err := check(name, n, raw)
		if errors.Is(err, storage.ErrAlreadyExists) || errors.Is(err, storage.ErrNotFound) {
			mu.Lock()
			defer mu.Unlock()
			nConflicts++
			if len(conflicts) < maxConflicts {
				conflicts = append(conflicts, err.Error())
			}
			return nil
		}
		return err
	})
	h, err := readDocument(doc, known, func(name string, n int, raw json.RawMessage) error {
		if name == SigningKeys {
			if k, err := decodeRecord(raw, checkKey); err == nil {
				docKeys[k.ID] = true
			}
		}
		return pool.submit(name, n, raw)
	})
	plan.Header = h
	if err = firstErr(err, pool.wait()); err != nil {
		return plan, err
	}
	if nConflicts > 0 {
		slices.Sort(conflicts)
		more := ""
		if nConflicts > len(conflicts) {
			more = fmt.Sprintf("\n  … and %d more", nConflicts-len(conflicts))
		}
		return plan, &ConflictError{fmt.Sprintf("%d records of the document conflict with what the store holds; nothing was written:\n  %s%s",
			nConflicts, strings.Join(conflicts, "\n  "), more)}
	}
	if held, err := s.ListSigningKeys(ctx); err != nil {
		return plan, err
	} else if n := countFunc(held, func(k storage.SigningKey) bool { return !docKeys[k.ID] }); n > 0 && len(docKeys) > 0 {
		plan.Warnings = append(plan.Warnings, fmt.Sprintf(
			"the store holds %d signing keys the document does not; they stay published, and the key activated last signs. Once a server runs on this store, `tokensmith keys rotate` retires them all in favour of one new key", n))
	}
	if o.DryRun {
		return plan, nil
	}

	// Second pass: write.
	if _, err := doc.Seek(0, io.SeekStart); err != nil {
		return plan, fmt.Errorf("reading the document again: %w", err)
	}
	done := Report{Header: h, Outcomes: map[string]map[storage.Outcome]int64{}, Warnings: plan.Warnings}
	var changes []storage.Change
	keysChanged := false
	unannounced := 0
	write := restoreOne(&restorer{ctx: ctx, store: s, now: o.Now,
		tally: func(kind string, out storage.Outcome) {
			mu.Lock()
			defer mu.Unlock()
			done.tally(kind, out)
		},
		changed: func(c storage.Change) {
			mu.Lock()
			defer mu.Unlock()
			if c.Kind == storage.ChangeSigningKeys {
				keysChanged = true
				return
			}
			changes = append(changes, c)
		}})
	// publish announces what was written, a batch at a time, so replicas running on the store
	// do not wait for the end of a long import to drop what they cached.
	publish := func(min int) {
		mu.Lock()
		if len(changes) < min {
			mu.Unlock()
			return
		}
		batch := changes
		if keysChanged {
			batch = append(batch, storage.Change{Kind: storage.ChangeSigningKeys})
		}
		changes, keysChanged = nil, false
		mu.Unlock()
		for _, c := range batch {
			if s.Publish(ctx, c) != nil {
				unannounced++
			}
		}
	}
	if o.Bulk != nil {
		finish, err := o.Bulk()
		if err != nil {
			return done, err
		}
		defer func() {
			if ferr := finish(); ferr != nil && err == nil {
				err = &PartialError{fmt.Errorf("writing the records to disk: %w", ferr)}
			}
		}()
	}
	pool = startWorkers(write)
	_, err = readDocument(doc, known, func(name string, n int, raw json.RawMessage) error {
		publish(100)
		return pool.submit(name, n, raw)
	})
	err = firstErr(err, pool.wait())
	publish(0)
	if unannounced > 0 {
		done.Warnings = append(done.Warnings, fmt.Sprintf(
			"%d changes could not be announced to running replicas; they see them within their client cache time", unannounced))
	}
	if err != nil {
		return done, &PartialError{err}
	}
	return done, nil
}

// importWorkers is how many records an import restores at once: each is one atomic step of
// its own, and the merge rules make the outcome independent of their order (a user and its
// tokens are one record), so a store across the network is not waited on one round trip at a
// time.
const importWorkers = 8

// workers restore records concurrently, one section at a time: a section's records are
// independent of each other, but a refresh family is restored before its tokens, so that a
// token does not make the family first and the family's own record then count as an update.
// The first error stops them.
type workers struct {
	jobs chan job
	wg   sync.WaitGroup
	// inflight counts records handed out and not yet restored; section the one being handed.
	inflight sync.WaitGroup
	section  string
	mu       sync.Mutex
	err      error
}

type job struct {
	name string
	n    int
	raw  json.RawMessage
}

func startWorkers(do func(name string, n int, raw json.RawMessage) error) *workers {
	w := &workers{jobs: make(chan job, importWorkers)}
	for range importWorkers {
		w.wg.Go(func() {
			for j := range w.jobs {
				if w.failed() == nil {
					if err := do(j.name, j.n, j.raw); err != nil {
						w.mu.Lock()
						if w.err == nil {
							w.err = err
						}
						w.mu.Unlock()
					}
				}
				w.inflight.Done()
			}
		})
	}
	return w
}

func (w *workers) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// submit hands a record to a worker, or returns the error that stopped them.
func (w *workers) submit(name string, n int, raw json.RawMessage) error {
	if name != w.section {
		w.inflight.Wait()
		w.section = name
	}
	if err := w.failed(); err != nil {
		return err
	}
	w.inflight.Add(1)
	w.jobs <- job{name, n, raw}
	return nil
}

// wait lets the workers finish what they were given and returns the first error.
func (w *workers) wait() error {
	close(w.jobs)
	w.wg.Wait()
	return w.failed()
}

// firstErr prefers a document that cannot be read to what the workers met meanwhile.
func firstErr(read, work error) error {
	var fe *FormatError
	if errors.As(read, &fe) || work == nil {
		return read
	}
	return work
}

// stageOf names a pass for the progress line.
func (*Progress) stageOf(dry bool) string {
	if dry {
		return "checking"
	}
	return "writing"
}

func countFunc[T any](l []T, f func(T) bool) int {
	n := 0
	for _, v := range l {
		if f(v) {
			n++
		}
	}
	return n
}

// ConflictError is a document whose records conflict with the store; nothing was written.
type ConflictError struct{ msg string }

func (e *ConflictError) Error() string { return e.msg }

// PartialError is a failure while writing: the records before it were written, each whole.
type PartialError struct{ err error }

func (e *PartialError) Error() string {
	return e.err.Error() + "; the records before it were written (each whole): run the import again to finish, it leaves what is already there unchanged"
}

func (e *PartialError) Unwrap() error { return e.err }
