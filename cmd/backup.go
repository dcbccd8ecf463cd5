package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"
	"github.com/tokensmith/tokensmith/backup"
	"github.com/tokensmith/tokensmith/config"
	"github.com/tokensmith/tokensmith/storage"
	"github.com/tokensmith/tokensmith/storage/embedded"
)

// export and import work on the store itself, not through the admin API: they are how a
// deployment moves to another store, and the one it leaves may have no server running.

// storeFlags are the flags that name the store, as serve finds it.
type storeFlags struct {
	config, storage string
}

func (f *storeFlags) add(c *cobra.Command) {
	c.Flags().StringVar(&f.config, "config", os.Getenv("TOKENSMITH_CONFIG"), "YAML configuration file (env TOKENSMITH_CONFIG)")
	c.Flags().StringVar(&f.storage, "storage", "",
		"the store: file:PATH, redis://, rediss://, redis+sentinel://, redis+cluster:// (default: as serve finds it, from TOKENSMITH_STORAGE, the configuration file, or file:tokensmith.db in TOKENSMITH_DATA_DIR)")
}

// open loads the configuration as serve does, with --storage over it, and opens the store. An
// embedded store a server holds is refused: one process owns it.
func (f *storeFlags) open(ctx context.Context, stderr io.Writer, verb string) (storage.Storage, string, error) {
	environ := os.Environ()
	if f.storage != "" {
		environ = append(environ, "TOKENSMITH_STORAGE="+f.storage)
	}
	cfg, _, err := loadConfig(f.config, environ)
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(stderr, "invalid configuration: %s\n", strings.TrimPrefix(line, "config: "))
		}
		return nil, "", exitCode(exitUsage)
	}
	label := storageLabel(cfg.Storage)
	switch kind, path, _ := config.ParseStorage(cfg.Storage); {
	case kind == config.StorageMemory:
		return nil, label, usagef("storage memory: lives inside the server process and ends with it: there is nothing to %s; name a file: or Redis store with --storage", verb)
	case kind == config.StorageFile && verb == "export":
		// Opening a file store creates it: a mistyped path would export an empty store.
		if _, err := os.Stat(path); err != nil {
			return nil, label, fmt.Errorf("storage %s: %w (is --storage, TOKENSMITH_STORAGE or TOKENSMITH_DATA_DIR right?)", label, err)
		}
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := openStore(ctx, cfg, log, &storeQuiet{})
	if errors.Is(err, errStoreInUse) {
		return nil, label, fmt.Errorf("storage %s is in use by a running tokensmith server: stop it first (an embedded store is opened by one process at a time; a Redis store can be read while replicas serve)", label)
	}
	return s, label, err
}

func exportCmd(g *globals, stderr io.Writer) *cobra.Command {
	var sf storeFlags
	c := &cobra.Command{
		Use:   "export",
		Short: "Write the whole store to standard output as one backup document",
		Long: "Write the store's clients, users and their personal tokens, live refresh tokens, signing keys and\n" +
			"revocations to standard output as one JSON document, for `tokensmith import` into this store\n" +
			"or another. Secrets stay digests, but the document holds the private signing keys: keep it as\n" +
			"you keep the store. Works on the store directly; an embedded store must not be in use by a\n" +
			"server, a Redis store can be exported while replicas serve.",
		Example: "  tokensmith export > backup.json\n  tokensmith export --storage redis://redis:6379 > backup.json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f, ok := g.out.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
				return usagef("standard output is a terminal: redirect it to a file (tokensmith export > backup.json); the document holds the signing keys")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			s, label, err := sf.open(ctx, stderr, "export")
			if err != nil {
				return err
			}
			defer s.Close()
			progress := &backup.Progress{}
			hideProgress := showProgress(stderr, "export", progress, time.Second)
			began := time.Now()
			counts, err := backup.Export(ctx, s, g.out, backup.ExportOptions{Tokensmith: Version, Progress: progress})
			hideProgress()
			if err != nil {
				return fmt.Errorf("export from %s: %w (the document written so far is incomplete: import refuses it)", label, err)
			}
			var parts []string
			for _, k := range backup.Kinds {
				parts = append(parts, fmt.Sprintf("%d %s", counts[k], strings.ReplaceAll(k, "_", " ")))
			}
			fmt.Fprintf(stderr, "exported from %s in %s: %s\n", label, time.Since(began).Round(time.Millisecond), strings.Join(parts, ", "))
			return nil
		},
	}
	sf.add(c)
	return c
}

func importCmd(g *globals, stdin io.Reader, stderr io.Writer) *cobra.Command {
	var sf storeFlags
	var dryRun bool
	c := &cobra.Command{
		Use:   "import",
		Short: "Restore a backup document from standard input into the store",
		Long: "Restore a document written by `tokensmith export` into the store. The whole document is checked\n" +
			"first (a document cut short, changed after export, or from a newer tokensmith is refused) and\n" +
			"so is what it would change: a record that would take a username or token belonging to\n" +
			"another record stops the import before anything is written. Records the store holds under\n" +
			"the same id are replaced by the document's, except that nothing revoked or used comes back\n" +
			"to life; records the document lacks are left alone. Running an import twice changes\n" +
			"nothing the second time. --dry-run reports what would change and writes nothing.",
		Example: "  tokensmith import --dry-run < backup.json\n  tokensmith import --storage redis://redis:6379 < backup.json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			doc, closeDoc, err := seekableInput(stdin)
			if err != nil {
				return err
			}
			defer closeDoc()
			s, label, err := sf.open(ctx, stderr, "import")
			if err != nil {
				return err
			}
			defer s.Close()
			progress := &backup.Progress{}
			hideProgress := showProgress(stderr, "import", progress, time.Second)
			rep, err := backup.Import(ctx, s, doc, backup.ImportOptions{DryRun: dryRun, Progress: progress, Bulk: bulk(s)})
			hideProgress()
			for _, w := range rep.Warnings {
				fmt.Fprintf(stderr, "warning: %s\n", w)
			}
			var fe *backup.FormatError
			var ce *backup.ConflictError
			var pe *backup.PartialError
			switch {
			case errors.As(err, &fe):
				return &cliError{code: "invalid_backup", msg: "the backup cannot be imported, nothing was written: " + fe.Error()}
			case errors.As(err, &ce):
				return &cliError{code: "conflict", msg: ce.Error()}
			case errors.As(err, &pe):
				return &cliError{code: "incomplete_import", msg: fmt.Sprintf("import into %s: %v", label, pe)}
			case err != nil:
				return fmt.Errorf("import into %s: %w; nothing was written", label, err)
			}
			return printImport(g, rep, label)
		},
	}
	sf.add(c)
	c.Flags().BoolVar(&dryRun, "dry-run", false, "check the document and report what would change, writing nothing")
	return c
}

// bulk is the embedded store's bulk mode (embedded.Store.Bulk), nil for Redis.
func bulk(s storage.Storage) func() (func() error, error) {
	if l, ok := s.(lockedStore); ok {
		if e, ok := l.Storage.(*embedded.Store); ok {
			return e.Bulk
		}
	}
	return nil
}

// showProgress prints, every interval (a second) while a long run lasts, what it is doing on
// standard error, and returns the function that stops it.
func showProgress(stderr io.Writer, verb string, p *backup.Progress, every time.Duration) func() {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				stage, kind, n := p.Status()
				fmt.Fprintf(stderr, "%s: %s %s, %d records so far\n", verb, stage, strings.ReplaceAll(kind, "_", " "), n)
			}
		}
	}()
	once := false
	return func() {
		if !once {
			once = true
			close(done)
			<-stopped
		}
	}
}

// seekableInput makes standard input readable twice: a file as it is (checked unchanged when
// it is read again), anything else (a pipe) copied first into a temporary file that only this
// process can reach, its name removed at once.
func seekableInput(stdin io.Reader) (io.ReadSeeker, func(), error) {
	if f, ok := stdin.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			return &unchangedFile{File: f, size: st.Size(), mod: st.ModTime()}, func() {}, nil
		}
		if isatty.IsTerminal(f.Fd()) {
			return nil, nil, usagef("standard input is a terminal: give the backup document on it (tokensmith import < backup.json)")
		}
	}
	tmp, err := os.CreateTemp("", "tokensmith-import-*")
	if err != nil {
		return nil, nil, fmt.Errorf("standard input is not a file, and it must be read twice: %w (give the document as a file, tokensmith import < backup.json, or set TMPDIR to a writable directory)", err)
	}
	_ = os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, stdin); err != nil {
		tmp.Close()
		return nil, nil, fmt.Errorf("reading standard input: %w", err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		tmp.Close()
		return nil, nil, err
	}
	return tmp, func() { tmp.Close() }, nil
}

// unchangedFile refuses to be read again once the file has changed: the second reading must
// write what the first one checked.
type unchangedFile struct {
	*os.File
	size int64
	mod  time.Time
}

func (f *unchangedFile) Seek(offset int64, whence int) (int64, error) {
	if st, err := f.Stat(); err != nil || st.Size() != f.size || !st.ModTime().Equal(f.mod) {
		return 0, errors.New("the backup file changed while it was being imported")
	}
	return f.File.Seek(offset, whence)
}

// printImport prints the report: a table, or JSON with --json.
func printImport(g *globals, rep backup.Report, label string) error {
	outcomes := []storage.Outcome{storage.Created, storage.Updated, storage.Unchanged, storage.Expired}
	if g.json {
		kinds := map[string]map[string]int64{}
		for _, k := range backup.Kinds {
			kinds[k] = map[string]int64{}
			for _, o := range outcomes {
				kinds[k][o.String()] = rep.Outcomes[k][o]
			}
		}
		b, err := json.MarshalIndent(map[string]any{
			"dry_run": rep.DryRun, "storage": label, "exported_at": rep.Header.ExportedAt, "tokensmith": rep.Header.Tokensmith,
			"version": rep.Header.Version, "records": kinds, "warnings": orEmpty(rep.Warnings),
		}, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(g.out, "%s\n", b)
		return nil
	}
	from := fmt.Sprintf("the backup of %s (tokensmith %s)", rep.Header.ExportedAt.UTC().Format(time.RFC3339), rep.Header.Tokensmith)
	if rep.DryRun {
		fmt.Fprintf(g.out, "dry run: importing %s into %s would do this (nothing was written):\n", from, label)
	} else {
		fmt.Fprintf(g.out, "imported %s into %s:\n", from, label)
	}
	tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RECORDS\tCREATED\tUPDATED\tUNCHANGED\tEXPIRED")
	for _, k := range backup.Kinds {
		row := strings.ReplaceAll(k, "_", " ")
		for _, o := range outcomes {
			row += fmt.Sprintf("\t%d", rep.Outcomes[k][o])
		}
		fmt.Fprintln(tw, row)
	}
	return tw.Flush()
}

func orEmpty(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}
