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
func Import(ctx context.Context, s Store, doc io.ReadSeeker, o ImportOptions) (Report, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	known := func(name string) bool {
		return slices.ContainsFunc(sections, func(sec section) bool { return sec.name == name })
	}
	restoreOne := func(r *restorer) func(string, json.RawMessage) error {
		return func(name string, raw json.RawMessage) error {
			o.Progress.set(o.Progress.stageOf(r.dryRun), name)
			o.Progress.add()
			i := slices.IndexFunc(sections, func(sec section) bool { return sec.name == name })
			return sections[i].restore(r, raw)
		}
	}

	// First pass: check everything, ask the store what would change.
	plan := Report{DryRun: true, Outcomes: map[string]map[storage.Outcome]int64{}}
	var conflicts []string
	nConflicts := 0
	docKeys := map[string]bool{}
	check := &restorer{ctx: ctx, store: s, dryRun: true, now: o.Now, tally: func(kind string, out storage.Outcome) {
		plan.tally(kind, out)
	}}
	visit := restoreOne(check)
	h, err := readDocument(doc, known, func(name string, raw json.RawMessage) error {
		if name == SigningKeys {
			if k, err := decodeRecord(raw, checkKey); err == nil {
				docKeys[k.ID] = true
			}
		}
		err := visit(name, raw)
		if errors.Is(err, storage.ErrAlreadyExists) || errors.Is(err, storage.ErrNotFound) {
			nConflicts++
			if len(conflicts) < maxConflicts {
				conflicts = append(conflicts, err.Error())
			}
			return nil
		}
		return err
	})
	plan.Header = h
	if err != nil {
		return plan, err
	}
	if nConflicts > 0 {
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
	write := &restorer{ctx: ctx, store: s, now: o.Now, tally: done.tally, changed: func(c storage.Change) {
		if c.Kind == storage.ChangeSigningKeys {
			keysChanged = true
			return
		}
		changes = append(changes, c)
	}}
	publish := func() {
		failed := 0
		if keysChanged {
			changes = append(changes, storage.Change{Kind: storage.ChangeSigningKeys})
		}
		for _, c := range changes {
			if s.Publish(ctx, c) != nil {
				failed++
			}
		}
		changes, keysChanged = nil, false
		if failed > 0 {
			done.Warnings = append(done.Warnings, fmt.Sprintf(
				"%d changes could not be announced to running replicas; they pick them up within their client cache time", failed))
		}
	}
	visit = restoreOne(write)
	_, err = readDocument(doc, known, func(name string, raw json.RawMessage) error {
		err := visit(name, raw)
		// Running replicas hear of changes a batch at a time, not all at the end, so a long
		// import does not hold back what it has written.
		if len(changes) >= 100 {
			publish()
		}
		return err
	})
	publish()
	if err != nil {
		return done, &PartialError{err}
	}
	return done, nil
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
