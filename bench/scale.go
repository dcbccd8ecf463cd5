package main

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/tokensmith/tokensmith/storage"
	"github.com/tokensmith/tokensmith/storage/embedded"
	redisstore "github.com/tokensmith/tokensmith/storage/redis"
)

// The scale mode (-scale) asks whether a request costs the same on a store of ten records as
// on one of a million. For each size N and store it fills a new store with N clients and N
// live refresh tokens (one family each, spread over the clients), written straight into the
// store by its storage.Seeder (the records CreateClient and CreateRefreshToken write, in
// batches, without bcrypt or HTTP), starts a server on it, and runs fresh, reused and refresh
// requests with clients of their own: the filled records are weight, which every lookup the
// requests make has to find its way through.

// scaleScenarios are the requests measured at every size.
var scaleScenarios = []string{"fresh", "reused", "refresh"}

// scaleResult is one (store, size): what the store weighs and what the requests cost on it.
type scaleResult struct {
	Store   string `json:"store"`
	Records int    `json:"records"` // N: clients, and as many refresh tokens
	// FillSeconds is how long the Seeder took for all 2N records.
	FillSeconds float64 `json:"fill_seconds"`
	// StartToReadyMS is from starting the server process to its first ready /readyz.
	StartToReadyMS float64 `json:"start_to_ready_ms"`
	// IdleRSSMiB is the server's resident set once ready, before any load.
	IdleRSSMiB float64 `json:"idle_rss_mib"`
	// DataFileMiB is the embedded store's file, or the RDB file Redis writes on SAVE.
	DataFileMiB float64 `json:"data_file_mib"`
	// Redis: used_memory growth per client and per refresh token (its family included).
	RedisBytesPerClient float64 `json:"redis_bytes_per_client,omitempty"`
	RedisBytesPerToken  float64 `json:"redis_bytes_per_refresh_token,omitempty"`
	Rows                []row   `json:"rows"`
}

type scaleReport struct {
	Date        string        `json:"date"`
	Commit      string        `json:"commit"`
	Machine     string        `json:"machine"`
	GoVersion   string        `json:"go"`
	Concurrency int           `json:"concurrency"`
	Duration    string        `json:"duration"`
	LoadBefore  string        `json:"load_before"`
	LoadAfter   string        `json:"load_after"`
	Results     []scaleResult `json:"results"`
}

// parseSizes reads -scale: comma-separated counts, with k and M allowed (10,10k,1M).
func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		mult := 1
		switch {
		case strings.HasSuffix(f, "k"):
			f, mult = strings.TrimSuffix(f, "k"), 1000
		case strings.HasSuffix(f, "M"):
			f, mult = strings.TrimSuffix(f, "M"), 1_000_000
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-scale: %q is not a positive count", f)
		}
		out = append(out, n*mult)
	}
	return out, nil
}

// scaleClient is seeded client i: an id, name and secret digest of the sizes the registry
// makes, a creation request digest as the admin API leaves one.
func scaleClient(now time.Time) func(i int) storage.Client {
	return func(i int) storage.Client {
		sum := scaleDigest("client", i)
		return storage.Client{
			ID: scaleID(i), Name: "scale client " + strconv.Itoa(i), SecretHash: sum[:],
			GrantTypes: []string{"client_credentials", "password", "refresh_token"}, Scopes: []string{benchScope},
			CreateRequest: hex.EncodeToString(sum[:12]), CreatedAt: now, UpdatedAt: now,
		}
	}
}

// scaleToken is seeded refresh token i, of client i mod clients: the first of a family, with
// the family id, digest and lifetimes a password login gives (30 days, access tokens of 1h).
func scaleToken(now time.Time, clients int) func(i int) storage.RefreshToken {
	return func(i int) storage.RefreshToken {
		sum := scaleDigest("token", i)
		return storage.RefreshToken{
			Hash: hex.EncodeToString(sum[:]), FamilyID: base64.RawURLEncoding.EncodeToString(sum[:9]),
			ClientID: scaleID(i % clients), Subject: scaleID(i + clients), Scope: benchScope,
			AccessTTL: time.Hour, IssuedAt: now, ExpiresAt: now.Add(30 * 24 * time.Hour),
		}
	}
}

func scaleDigest(kind string, i int) [32]byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(i))
	return sha256.Sum256(append([]byte(kind+"\x00"), b[:]...))
}

// scaleID is a 12-character id like secret.NewID's, the same for the same i.
func scaleID(i int) string {
	sum := scaleDigest("id", i)
	return strings.ToLower(base32.StdEncoding.EncodeToString(sum[:8]))[:12]
}

// scaleMain builds the pure-Go server and runs the scale mode with it.
func scaleMain(root, tmp, sizesFlag string, stores []string, c int, warm, d time.Duration, idle float64, idleWait time.Duration, profDir, jsonOut string) error {
	sizes, err := parseSizes(sizesFlag)
	if err != nil {
		return err
	}
	// A store of a million records is read before the server is ready.
	readyTimeout = 5 * time.Minute
	rep := &scaleReport{Date: time.Now().UTC().Format("2006-01-02 15:04 MST"), Commit: commit(root), Machine: machine(),
		GoVersion: runtime.Version(), Concurrency: c, Duration: d.String(), LoadBefore: loadAvg()}
	say := func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	say("building the server…")
	bin, err := build(root, tmp, "tokensmith-go", ".")
	if err != nil {
		return err
	}
	ses := &session{c: c, warm: warm, d: d, tmp: tmp, say: say,
		quiet: quiet{share: idle, wait: idleWait, say: say}, out: outputs{profiles: profDir}}
	if isTerminal(os.Stderr) {
		ses.tty = os.Stderr
	}
	// What was measured before a failure is printed all the same: a size that fails (a
	// machine too small for it) does not take the smaller ones with it.
	err = runScale(ses, bin, sizes, stores, rep)
	rep.LoadAfter = loadAvg()
	fmt.Println()
	rep.print(os.Stdout)
	if jsonOut != "" {
		err = errors.Join(err, rep.write(jsonOut))
	}
	return err
}

// runScale is the scale mode: every size on every store, in that order, one server at a time.
func runScale(ses *session, bin string, sizes []int, stores []string, rep *scaleReport) error {
	for _, store := range stores {
		if store != storeEmbedded && store != storeRedis {
			return fmt.Errorf("-scale runs on embedded and redis, not %s", store)
		}
		for _, n := range sizes {
			res, err := scaleOne(ses, bin, store, n)
			if err != nil {
				return fmt.Errorf("scale %s at %d: %w", store, n, err)
			}
			rep.Results = append(rep.Results, res)
		}
	}
	return nil
}

func scaleOne(ses *session, bin, store string, n int) (scaleResult, error) {
	ctx := context.Background()
	res := scaleResult{Store: store, Records: n}
	dir := filepath.Join(ses.tmp, fmt.Sprintf("scale-%s-%d", store, n))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	now := time.Now().UTC()
	v := variant{build: "go", store: store}
	var (
		url      string
		rs       *redisServer
		seeder   storage.Seeder
		closeIt  func() error
		dataFile string
	)
	switch store {
	case storeEmbedded:
		dataFile = filepath.Join(dir, "tokensmith.db")
		url = "file:" + dataFile
	case storeRedis:
		var err error
		if rs, err = startRedis(filepath.Join(dir, "redis")); err != nil {
			return res, err
		}
		url = "redis://" + rs.addr
		dataFile = filepath.Join(dir, "redis", "dump.rdb")
	}
	// A store that grew to this size under this version was first opened by a server while it
	// was empty, which did the store's one-time work then (its signing keys, the check of
	// stored clients' token lengths): so does this one, before the records are written.
	first, err := startServerOn(bin, filepath.Join(dir, "first-start"), v, ses.otlp, ses.algorithms, url, nil)
	if err != nil {
		if rs != nil {
			rs.stop()
		}
		return res, fmt.Errorf("first start on the empty store: %w", err)
	}
	first.stop()
	switch store {
	case storeEmbedded:
		s, err := embedded.OpenFile(dataFile)
		if err != nil {
			return res, err
		}
		seeder, closeIt = s, s.Close
	case storeRedis:
		// A pipeline of a whole batch may take longer than go-redis's default read timeout
		// on a busy machine.
		s := redisstore.New(goredis.NewClient(&goredis.Options{Addr: rs.addr, ReadTimeout: time.Minute, WriteTimeout: time.Minute}))
		seeder, closeIt = s, s.Close
	}
	used := func() int64 {
		if rs == nil {
			return 0
		}
		return redisUsedMemory(ctx, rs.addr)
	}
	ses.say("scale: %s, filling %d clients and %d refresh tokens…", store, n, n)
	start := time.Now()
	before := used()
	err = seeder.SeedClients(ctx, n, scaleClient(now))
	afterClients := used()
	if err == nil {
		err = seeder.SeedRefreshTokens(ctx, n, scaleToken(now, n))
	}
	afterTokens := used()
	res.FillSeconds = time.Since(start).Seconds()
	if cerr := closeIt(); err == nil {
		err = cerr
	}
	if err == nil && rs != nil {
		err = redisSave(ctx, rs.addr)
		res.RedisBytesPerClient = float64(afterClients-before) / float64(n)
		res.RedisBytesPerToken = float64(afterTokens-afterClients) / float64(n)
	}
	if err != nil {
		if rs != nil {
			rs.stop()
		}
		return res, err
	}
	if fi, err := os.Stat(dataFile); err == nil {
		res.DataFileMiB = float64(fi.Size()) / (1 << 20)
	}
	ses.say("  filled in %.1fs; starting the server…", res.FillSeconds)
	s, err := startServerOn(bin, filepath.Join(dir, "server"), v, ses.otlp, ses.algorithms, url, rs)
	if err != nil {
		if rs != nil {
			rs.stop()
		}
		return res, err
	}
	defer s.stop()
	res.StartToReadyMS = float64(s.startToReady) / float64(time.Millisecond)
	res.IdleRSSMiB = float64(s.rss()) / (1 << 20)
	ses.say("  ready in %.2fs, %.1f MiB resident", res.StartToReadyMS/1000, res.IdleRSSMiB)
	r := &running{v: v, s: s, f: &fixture{}, prepared: map[string]newWorker{}}
	for _, name := range scaleScenarios {
		sc, _ := scenarioByName(name)
		out, err := ses.measure(r, sc)
		if err != nil {
			return res, err
		}
		res.Rows = append(res.Rows, out)
	}
	return res, nil
}

// redisUsedMemory is INFO memory's used_memory, in bytes.
func redisUsedMemory(ctx context.Context, addr string) int64 {
	c := goredis.NewClient(&goredis.Options{Addr: addr})
	defer c.Close()
	info, err := c.Info(ctx, "memory").Result()
	if err != nil {
		return 0
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// redisSave writes Redis's RDB file, whose size is what the data weighs on disk.
func redisSave(ctx context.Context, addr string) error {
	c := goredis.NewClient(&goredis.Options{Addr: addr, ReadTimeout: 5 * time.Minute})
	defer c.Close()
	return c.Save(ctx).Err()
}

// print writes the two scale tables: what the store weighs at each size, and what the
// requests cost, with each figure's ratio to the smallest size of its store.
func (rep *scaleReport) print(w io.Writer) {
	fmt.Fprintf(w, "Scale: %s, commit %s, %s, %s, c=%d, %s per scenario, load average %s before, %s after\n\n",
		rep.Date, rep.Commit, rep.Machine, rep.GoVersion, rep.Concurrency, rep.Duration, rep.LoadBefore, rep.LoadAfter)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "store\tclients + refresh tokens\tfill s\tstart to ready s\tidle RSS MiB\tRSS per record B\tdata file MiB\tRedis B/client\tRedis B/refresh token\t")
	base := map[string]scaleResult{}
	for _, r := range rep.Results {
		b, ok := base[r.Store]
		if !ok {
			base[r.Store], b = r, r
		}
		perRecord := "-"
		if r.Records > b.Records {
			perRecord = f0((r.IdleRSSMiB - b.IdleRSSMiB) * (1 << 20) / float64(2*(r.Records-b.Records)))
		}
		redisClient, redisToken := "-", "-"
		if r.Store == storeRedis {
			redisClient, redisToken = f0(r.RedisBytesPerClient), f0(r.RedisBytesPerToken)
		}
		fmt.Fprintf(tw, "%s\t%d + %d\t%.1f\t%.2f\t%.1f\t%s\t%.1f\t%s\t%s\t\n", r.Store, r.Records, r.Records, r.FillSeconds,
			r.StartToReadyMS/1000, r.IdleRSSMiB, perRecord, r.DataFileMiB, redisClient, redisToken)
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "store\trecords\tscenario\treq/s\t× smallest\tp99 ms\t× smallest\tCPU ms/req\tpeak RSS MiB\terrors\tothers' CPU\t")
	for _, r := range rep.Results {
		b := base[r.Store]
		for i, row := range r.Rows {
			rps, p99 := "-", "-"
			if i < len(b.Rows) && b.Rows[i].RPS > 0 && b.Rows[i].P99MS > 0 {
				rps = strconv.FormatFloat(row.RPS/b.Rows[i].RPS, 'f', 2, 64)
				p99 = strconv.FormatFloat(row.P99MS/b.Rows[i].P99MS, 'f', 2, 64)
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%.3f\t%.1f\t%d\t%.0f%%\t\n", r.Store, r.Records, row.Scenario, f0(row.RPS), rps,
				msStr(row.P99MS), p99, row.CPUMS, row.PeakRSSMiB, row.Errors, row.OthersPct)
		}
	}
	tw.Flush()
}

func (rep *scaleReport) write(path string) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
