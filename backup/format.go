package backup

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"time"
)

// The document is one JSON object, written and read a record at a time:
//
//	{"format":"tokensmith-backup","version":1,"exported_at":"…","tokensmith":"…",
//	"signing_keys":[
//	{…},
//	{…}
//	],
//	"clients":[
//	…
//	],
//	"end":{"records":1234,"sha256":"…"}}
//
// format and version come first, so a reader knows what it reads before it reads records; end
// comes last and holds the number of records and the SHA-256 of, for every record in order,
// its section's name, a newline, the record as compact JSON and a newline. A document cut
// short has no end; a record changed, dropped or moved to another section no longer matches
// the digest. The digest catches damage, not a forger: whoever can write the file can
// compute it again.

const (
	// Format names the document.
	Format = "tokensmith-backup"
	// Version is the newest format this build writes and reads. It changes only when a field
	// or section changes meaning, so a reader that knows every name it finds could misread
	// it; a new section or field needs no new version (see section).
	Version = 1
)

// Header is what a document says about itself.
type Header struct {
	Format     string    `json:"format"`
	Version    int       `json:"version"`
	ExportedAt time.Time `json:"exported_at"`
	// Tokensmith is the version of the build that wrote the document.
	Tokensmith string `json:"tokensmith"`
}

// end is the document's last member.
type end struct {
	Records int64  `json:"records"`
	SHA256  string `json:"sha256"`
}

// writer writes a document.
type writer struct {
	w       *bufio.Writer
	digest  hash.Hash
	records int64
	// first: no record has been written in the open section yet.
	first   bool
	section string
}

func newWriter(w io.Writer, h Header) (*writer, error) {
	dw := &writer{w: bufio.NewWriterSize(w, 64<<10), digest: sha256.New()}
	b, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	// The header's members, without its closing brace: the sections follow.
	_, err = dw.w.Write(b[:len(b)-1])
	return dw, err
}

func (w *writer) open(section string) error {
	w.section, w.first = section, true
	_, err := fmt.Fprintf(w.w, ",\n%q:[", section)
	return err
}

// record writes one record of the open section.
func (w *writer) record(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	sep := ",\n"
	if w.first {
		sep, w.first = "\n", false
	}
	if _, err := w.w.WriteString(sep); err != nil {
		return err
	}
	if _, err := w.w.Write(b); err != nil {
		return err
	}
	digestRecord(w.digest, w.section, b)
	w.records++
	return nil
}

func (w *writer) close() error {
	sep := "\n]"
	if w.first {
		sep = "]"
	}
	_, err := w.w.WriteString(sep)
	return err
}

// finish writes the end and flushes.
func (w *writer) finish() error {
	b, err := json.Marshal(end{Records: w.records, SHA256: hex.EncodeToString(w.digest.Sum(nil))})
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(w.w, ",\n\"end\":%s}\n", b); err != nil {
		return err
	}
	return w.w.Flush()
}

func digestRecord(h hash.Hash, section string, compact []byte) {
	h.Write([]byte(section))
	h.Write([]byte{'\n'})
	h.Write(compact)
	h.Write([]byte{'\n'})
}

// FormatError is a document that cannot be imported: not a backup, damaged, cut short,
// changed after it was written, or from a newer build.
type FormatError struct{ msg string }

func (e *FormatError) Error() string { return e.msg }

func formatErr(format string, args ...any) error { return &FormatError{fmt.Sprintf(format, args...)} }

// readDocument reads a whole document, calling visit for each record of a known section in
// order (n counts the section's records from 1), and checks it: the header first, every record, then the end's count and digest.
// known tells whether a section is one this build restores; an unknown section is accepted
// only when it is empty. A visit error stops the reading and is returned.
func readDocument(r io.Reader, known func(string) bool, visit func(section string, n int, raw json.RawMessage) error) (Header, error) {
	var h Header
	d := json.NewDecoder(bufio.NewReaderSize(r, 64<<10))
	d.UseNumber()
	digest := sha256.New()
	var records int64
	// where says how far the reading got, for errors about a document cut short.
	where := func() string {
		return fmt.Sprintf("after %d records, at byte %d", records, d.InputOffset())
	}
	syntax := func(err error) error {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return formatErr("the document ends %s, before its end: it was cut short (an interrupted export or copy?)", where())
		}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return formatErr("the document is not valid JSON at byte %d (%v): it is damaged, or not a tokensmith backup", se.Offset, err)
		}
		return fmt.Errorf("reading the document: %w", err)
	}
	delim := func(want json.Delim, what string) error {
		tok, err := d.Token()
		if err != nil {
			return syntax(err)
		}
		if tok != want {
			return formatErr("%s: expected %q, found %v", what, want, tok)
		}
		return nil
	}
	if tok, err := d.Token(); errors.Is(err, io.EOF) {
		return h, formatErr("the document is empty")
	} else if err != nil {
		return h, syntax(err)
	} else if tok != json.Delim('{') {
		return h, formatErr("not a tokensmith backup: it is not a JSON object")
	}
	seen := map[string]bool{}
	sawEnd := false
	for i := 0; ; i++ {
		tok, err := d.Token()
		if err != nil {
			return h, syntax(err)
		}
		if tok == json.Delim('}') {
			break
		}
		name, _ := tok.(string)
		if sawEnd {
			return h, formatErr("%q follows the document's end: the end must come last", name)
		}
		if seen[name] {
			return h, formatErr("%q appears twice in the document", name)
		}
		seen[name] = true
		switch {
		case i == 0 && name != "format", i == 1 && name != "version":
			return h, formatErr("not a tokensmith backup: it does not begin with \"format\" and \"version\"")
		case name == "format":
			if err := d.Decode(&h.Format); err != nil || h.Format != Format {
				return h, formatErr("not a tokensmith backup: format is %q, want %q", h.Format, Format)
			}
		case name == "version":
			var n json.Number
			if err := d.Decode(&n); err != nil {
				return h, formatErr("the document's version is not a number")
			}
			v, err := strconv.Atoi(n.String())
			switch {
			case err != nil || v < 1:
				return h, formatErr("the document's version %s is not a version", n)
			case v > Version:
				return h, formatErr("the document is format version %d, written by a newer tokensmith; this build reads versions up to %d: import it with the version that wrote it, or a later one", v, Version)
			}
			h.Version = v
		case name == "exported_at":
			if err := d.Decode(&h.ExportedAt); err != nil {
				return h, formatErr("exported_at: %v", err)
			}
		case name == "tokensmith":
			if err := d.Decode(&h.Tokensmith); err != nil {
				return h, formatErr("tokensmith: %v", err)
			}
		case name == "end":
			var e end
			var raw json.RawMessage
			if err := d.Decode(&raw); err != nil {
				return h, syntax(err)
			}
			if err := strictJSON(raw, &e); err != nil {
				return h, formatErr("the document's end: %v", err)
			}
			if e.Records != records {
				return h, formatErr("the document holds %d records where its end says %d: records were added or removed after it was written", records, e.Records)
			}
			if got := hex.EncodeToString(digest.Sum(nil)); got != e.SHA256 {
				return h, formatErr("the document's records do not match its SHA-256 digest: it was changed or damaged after it was written")
			}
			sawEnd = true
		default:
			if err := delim('[', fmt.Sprintf("%q is not a section of records", name)); err != nil {
				return h, err
			}
			isKnown := known(name)
			for n := 1; d.More(); n++ {
				var raw json.RawMessage
				if err := d.Decode(&raw); err != nil {
					return h, syntax(err)
				}
				if !isKnown {
					return h, formatErr("section %q holds records this build of tokensmith does not know how to restore (the document was written by tokensmith %s): import it with that version, or a later one", name, orUnknown(h.Tokensmith))
				}
				var compact bytes.Buffer
				if err := json.Compact(&compact, raw); err != nil {
					return h, syntax(err)
				}
				digestRecord(digest, name, compact.Bytes())
				records++
				if err := visit(name, n, raw); err != nil {
					return h, recordErr(name, n, err)
				}
			}
			if err := delim(']', name); err != nil {
				return h, err
			}
		}
	}
	if !sawEnd {
		return h, formatErr("the document has no end record (%s): it was cut short or edited", where())
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return h, formatErr("the document goes on after its end")
	}
	return h, nil
}

// recordErr says which record err is about when the record itself is wrong.
func recordErr(section string, n int, err error) error {
	if errors.Is(err, errRecord) {
		return formatErr("%s, record %d: %v", section, n, err)
	}
	return err
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}

// strictJSON decodes raw into v, refusing fields v does not have.
func strictJSON(raw json.RawMessage, v any) error {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	return d.Decode(v)
}
