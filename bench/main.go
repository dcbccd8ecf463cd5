// Command bench is Tokensmith's load benchmark. It builds the
// server, starts it on the embedded store and, when redis-server is installed, on a Redis it
// starts itself, drives it over real HTTP with a fixed number of concurrent clients for a fixed
// time per scenario, checks every answer, and prints one table: requests/s, latency quantiles,
// errors, the server's CPU time per request (from /proc/<pid>/stat) and its peak resident set
// (VmHWM). In the same run it times one RS256 signature on one core, and, when cgo and the
// OpenSSL headers are available, builds the server with -tags openssl too and runs fresh
// issuance on both builds. Fresh issuance is also run per signing algorithm (PS256, ES256,
// EdDSA; "fresh" itself is RS256) on the pure-Go build, whose servers then publish keys of all
// four.
//
//	go run ./bench                      # everything, c=16, 10 s per scenario
//	go run ./bench -d 5s -stores embedded -scenarios fresh,reused
//	go run ./bench -scenarios fresh,reused,fresh-ps256,fresh-es256,fresh-eddsa -audit=false
//	go run ./bench -json new.json -compare old.json
//	go run ./bench -stores sentinel,sentinel-nowait -scenarios limited,revoke,password,refresh -audit=false -openssl=off
//	go run ./bench -scale 10,10k,1M -d 5s     # the same requests on stores of growing size
//	go run ./bench -stores embedded -scenarios fresh,fresh-tls,mtls,mtls-self-signed,mtls-bound,dpop,private-key-jwt
//
// The scenarios fresh-tls and mtls* run on a server that serves HTTPS with a certificate of a
// CA the benchmark makes, and asks callers for client certificates; clients keep their
// connections alive, so a TLS handshake is made per connection, not per request.
//
// The load generator runs on the same machine, so on a small one it takes CPU from the server;
// CPU per request is measured on the server process alone and is not affected.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// variant is one way of running the server: its build, its store, its audit sink, and
// whether it traces.
type variant struct {
	build string // "go" or "openssl"
	store string // storeEmbedded or storeRedis
	audit string // "" for the server's default, else a TOKENSMITH_AUDIT choice
	// tracing: every request is traced and its spans exported over OTLP/HTTP to the
	// benchmark's own receiver (startOTLPSink); otherwise no OTEL_* variable is set.
	tracing bool
	// tls: the public listener serves HTTPS and asks for client certificates (the scenarios
	// of tlsScenarioNames run there).
	tls bool
}

func (v variant) String() string {
	s := v.build + "/" + v.store
	if v.audit != "" {
		s += "/audit=" + v.audit
	}
	if v.tracing {
		s += "/tracing"
	}
	if v.tls {
		s += "/tls"
	}
	return s
}

const (
	storeEmbedded = "embedded"
	storeRedis    = "redis"
	// storeSentinel is Redis Sentinel with one replica that confirms every write (min_replicas=1,
	// its default); storeSentinelNoWait the same without waiting for it (min_replicas=0), so
	// the two show what the wait costs.
	storeSentinel       = "sentinel"
	storeSentinelNoWait = "sentinel-nowait"

	auditOff   = "off"
	auditFile  = "file"
	auditRedis = "redis"
)

func main() {
	if err := benchmain(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func benchmain() error {
	var (
		c          = flag.Int("c", 16, "concurrent clients, each with its own keep-alive connection")
		d          = flag.Duration("d", 10*time.Second, "measured duration of each scenario")
		warm       = flag.Duration("warmup", 2*time.Second, "unmeasured warm-up before each scenario")
		stores     = flag.String("stores", "auto", "comma-separated: embedded, redis, sentinel (min_replicas=1), sentinel-nowait (min_replicas=0); auto is embedded and redis when redis-server is installed")
		only       = flag.String("scenarios", "", "comma-separated scenarios (default all): "+scenarioNames())
		openssl    = flag.String("openssl", "auto", "also build with -tags openssl and run fresh issuance on it: auto (when cgo and the headers work), on, off")
		audits     = flag.Bool("audit", true, "also run fresh issuance with audit off and with the audit sink of each store (file, Redis stream)")
		tracing    = flag.Bool("tracing", true, "also run fresh issuance with OpenTelemetry tracing on, every request traced and exported over OTLP/HTTP to a receiver in this process that discards the spans")
		baseline   = flag.String("baseline", "", "also build the server at this git commit and run the selected scenarios on it, for a before/after in one run")
		idle       = flag.Float64("idle", 0.15, "before each scenario, wait until other processes use less than this share of the CPUs (0 turns waiting off)")
		idleWait   = flag.Duration("idle-wait", 10*time.Minute, "longest wait for the machine to become idle before a scenario; past it the scenario runs anyway")
		rounds     = flag.Int("rounds", 3, "fresh issuance (across builds and audit sinks) and reuse are run in this many more alternating rounds; their rows are the median run")
		jsonOut    = flag.String("json", "", "write the rows to this JSON file")
		profDir    = flag.String("profile", "", "save the server's CPU profile of every scenario's measured window, and its heap profile as the window ends, into this directory (pprof)")
		traceDir   = flag.String("trace", "", "save a 2-second execution trace of every scenario into this directory (go tool trace)")
		cmpFile    = flag.String("compare", "", "print the change from an earlier -json file")
		measureSig = flag.Bool("measure-signature", false, "internal: print one signature's cost with this binary's signer as JSON")
		scale      = flag.String("scale", "", "scale mode instead of the scenarios: fill each store with this many clients and as many refresh tokens (comma-separated, k and M allowed: 10,10k,1M) and run fresh, reused and refresh issuance on it")
	)
	flag.Parse()
	if *measureSig {
		s, err := measureSignature()
		if err != nil {
			return err
		}
		return json.NewEncoder(os.Stdout).Encode(s)
	}
	if *c < 1 || *d <= 0 {
		return errors.New("-c and -d must be positive")
	}
	var old *report
	if *cmpFile != "" {
		var err error
		if old, err = readReport(*cmpFile); err != nil {
			return err
		}
	}
	selected := scenarios
	if *only != "" {
		selected = nil
		for _, n := range strings.Split(*only, ",") {
			sc, ok := scenarioByName(strings.TrimSpace(n))
			if !ok {
				return fmt.Errorf("unknown scenario %q (have %s)", n, scenarioNames())
			}
			selected = append(selected, sc)
		}
	}
	storeList, err := chooseStores(*stores)
	if err != nil {
		return err
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "tokensmith-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	if *scale != "" {
		return scaleMain(root, tmp, *scale, storeList, *c, *warm, *d, *idle, *idleWait, *profDir, *jsonOut)
	}

	rep := &report{Date: time.Now().UTC().Format("2006-01-02 15:04 MST"), Commit: commit(root), Machine: machine(),
		GoVersion: runtime.Version(), Concurrency: *c, Duration: d.String(), LoadBefore: loadAvg()}
	progress := os.Stderr
	say := func(format string, args ...any) { fmt.Fprintf(progress, format+"\n", args...) }

	say("building the server…")
	bins := map[string]string{}
	if bins["go"], err = build(root, tmp, "tokensmith-go", "."); err != nil {
		return err
	}
	if *baseline != "" {
		if bins["go@"+*baseline], err = buildAt(root, tmp, *baseline); err != nil {
			return err
		}
	}
	// Each signer is timed in its own binary: this one for Go, this program built with the
	// tag for OpenSSL.
	sigBins := map[string]string{}
	if *openssl != "off" {
		bin, err := build(root, tmp, "tokensmith-openssl", ".", "openssl")
		var sigBin string
		if err == nil {
			sigBin, err = build(root, tmp, "bench-openssl", "./bench", "openssl")
		}
		switch {
		case err == nil:
			bins["openssl"], sigBins["openssl"] = bin, sigBin
		case *openssl == "on":
			return err
		default:
			say("no OpenSSL build (needs cgo, gcc and libssl-dev): %v", firstLine(err))
		}
	}
	// The machine may be shared: signatures are timed before and after every server variant,
	// and the median of those samples is the figure, so the signature and the servers are
	// measured under the same conditions.
	samples := map[string][]signature{}
	timeSignatures := func() error {
		s, err := measureSignature()
		if err != nil {
			return err
		}
		samples["go"] = append(samples["go"], s)
		if bin := sigBins["openssl"]; bin != "" {
			s, err := measureSignatureIn(bin)
			if err != nil {
				return err
			}
			samples["openssl"] = append(samples["openssl"], s)
		}
		return nil
	}
	say("timing one signature per signer…")
	if err := timeSignatures(); err != nil {
		return err
	}

	ses := &session{c: *c, warm: *warm, d: *d, tmp: tmp, say: say,
		quiet: quiet{share: *idle, wait: *idleWait, say: say}, out: outputs{profiles: *profDir, traces: *traceDir}}
	if *tracing {
		sink, err := startOTLPSink()
		if err != nil {
			return err
		}
		defer sink.Close()
		defer func() {
			say("OTLP receiver: %d export requests, %.1f MiB of spans", sink.requests.Load(), float64(sink.bytes.Load())/(1<<20))
		}()
		ses.otlp = sink.URL
	}
	if isTerminal(progress) {
		ses.tty = progress
	}
	haveFresh := slices.ContainsFunc(selected, func(s scenario) bool { return s.name == "fresh" })
	haveReused := haveFresh && slices.ContainsFunc(selected, func(s scenario) bool { return s.name == "reused" })
	// Servers publish keys of every algorithm only when a scenario signs with one of the
	// others, so that the other rows (the JWKS above all) stay comparable with earlier runs.
	if slices.ContainsFunc(selected, func(s scenario) bool { return s.name != "fresh" && algorithmScenario(s.name) != "" }) {
		ses.algorithms = benchAlgorithms
	}
	for _, store := range storeList {
		main := variant{build: "go", store: store}
		// Full runs: every selected scenario on this build, and on the baseline's.
		full := []variant{main}
		if *baseline != "" {
			full = append(full, variant{build: "go@" + *baseline, store: store})
		}
		// Compared on fresh issuance only, in rounds that alternate between the servers so
		// that a change in the machine's speed (it is shared) affects them all alike.
		compared := []variant{main}
		if *audits {
			sink := auditFile
			if store != storeEmbedded {
				sink = auditRedis
			}
			compared = append(compared, variant{build: "go", store: store, audit: auditOff}, variant{build: "go", store: store, audit: sink})
		}
		if *tracing {
			compared = append(compared, variant{build: "go", store: store, tracing: true})
		}
		if bins["openssl"] != "" {
			compared = append(compared, variant{build: "openssl", store: store})
		}
		if *baseline != "" {
			compared = append(compared, full[1])
		}
		// The scenarios that need TLS run on a server of the main build that serves it; so
		// that they and the ones they are compared with (fresh, dpop, private-key-jwt, …)
		// are measured alike, they run in the rounds too.
		mainTLS := variant{build: "go", store: store, tls: true}
		needTLS := slices.ContainsFunc(selected, func(s scenario) bool { return tlsScenario(s.name) })
		start := append(full, compared...)
		if needTLS {
			start = append(start, mainTLS)
		}
		// host is the server a scenario that runs on one server only runs on.
		host := func(sc string) variant {
			if tlsScenario(sc) {
				return mainTLS
			}
			return main
		}
		servers := map[variant]*running{}
		for _, v := range start {
			if servers[v] != nil {
				continue
			}
			r, err := ses.start(bins[v.build], v)
			if err != nil {
				ses.stopAll(servers)
				return err
			}
			servers[v] = r
		}
		err := func() error {
			// runs collects the runs of each (variant, scenario) that is run in rounds.
			type key struct {
				v  variant
				sc string
			}
			runs := map[key][]row{}
			// The other algorithms' fresh issuance runs on the main build only (an older one
			// may not know them), in the rounds beside RS256's and reuse, whose ratios are
			// their targets.
			otherAlg := func(sc string) bool { return sc != "fresh" && algorithmScenario(sc) != "" }
			// single: scenarios run on the main build only (or its TLS server), in rounds.
			single := func(sc string) bool { return otherAlg(sc) || clientAuthScenario(sc) }
			anySingle := slices.ContainsFunc(selected, func(s scenario) bool { return single(s.name) })
			inRounds := func(v variant, sc string) bool {
				return (sc == "fresh" && slices.Contains(compared, v) && (len(compared) > 1 || haveReused || anySingle)) ||
					(sc == "reused" && slices.Contains(full, v) && haveReused) ||
					(single(sc) && v == host(sc))
			}
			// Rows in scenario order; a row of a pair run in rounds is a place its median fills.
			type slot struct {
				k   key
				row *row
			}
			var order []slot
			// Each scenario runs on the build and the baseline one after the other, so that a
			// before/after pair is measured minutes apart at most.
			for _, sc := range selected {
				on := full
				if single(sc.name) {
					on = []variant{host(sc.name)}
				}
				for _, v := range on {
					r, err := ses.measure(servers[v], sc)
					if err != nil {
						return err
					}
					k := key{v, sc.name}
					if inRounds(v, sc.name) {
						runs[k] = append(runs[k], r)
						order = append(order, slot{k: k})
						continue
					}
					order = append(order, slot{k: k, row: &r})
				}
			}
			// Rounds: fresh issuance on every compared server, and reuse on the builds, since
			// their ratio is a target. Alternating servers makes a change in the machine's
			// speed (it is shared) affect them all alike.
			var pairs []key
			for _, v := range compared {
				if inRounds(v, "fresh") {
					pairs = append(pairs, key{v, "fresh"})
				}
			}
			for _, v := range full {
				if inRounds(v, "reused") {
					pairs = append(pairs, key{v, "reused"})
				}
			}
			for _, sc := range selected {
				if single(sc.name) {
					pairs = append(pairs, key{host(sc.name), sc.name})
				}
			}
			if len(pairs) > 0 {
				for round := range *rounds {
					// Rotate the order too: the first run after a pause is often the fastest.
					for i := range pairs {
						k := pairs[(i+round)%len(pairs)]
						sc, _ := scenarioByName(k.sc)
						r, err := ses.measure(servers[k.v], sc)
						if err != nil {
							return err
						}
						runs[k] = append(runs[k], r)
					}
					if err := timeSignatures(); err != nil {
						return err
					}
				}
			}
			for _, k := range pairs {
				if !slices.ContainsFunc(order, func(s slot) bool { return s.row == nil && s.k == k }) {
					order = append(order, slot{k: k})
				}
			}
			for _, s := range order {
				if s.row != nil {
					rep.Rows = append(rep.Rows, *s.row)
				} else if len(runs[s.k]) > 0 {
					rep.Rows = append(rep.Rows, medianRow(runs[s.k]))
				}
			}
			return timeSignatures()
		}()
		ses.stopAll(servers)
		if err != nil {
			return err
		}
	}
	for _, signer := range []string{"go", "openssl"} {
		if len(samples[signer]) > 0 {
			rep.Signatures = append(rep.Signatures, medianSignature(samples[signer]))
		}
	}
	rep.LoadAfter = loadAvg()
	fmt.Println()
	rep.print(os.Stdout)
	if old != nil {
		compare(os.Stdout, old, rep)
	}
	if *jsonOut != "" {
		if err := rep.write(*jsonOut); err != nil {
			return err
		}
	}
	return nil
}

// outputs are the directories profiles and traces go to ("" for none).
type outputs struct{ profiles, traces string }

// forScenario names the profile and trace files of one run of sc on v; later runs of the same
// pair overwrite earlier ones.
func (o outputs) forScenario(v variant, sc scenario) (profiles, error) {
	name := strings.NewReplacer("/", "-", "@", "-", "=", "-").Replace(v.String()) + "-" + sc.name
	var p profiles
	for _, x := range []struct {
		dir, ext string
		to       *string
	}{{o.profiles, ".pprof", &p.cpu}, {o.traces, ".trace", &p.trace}} {
		if x.dir == "" {
			continue
		}
		if err := os.MkdirAll(x.dir, 0o755); err != nil {
			return p, err
		}
		*x.to = filepath.Join(x.dir, name+x.ext)
	}
	return p, nil
}

// session holds what every measurement of a run shares.
type session struct {
	c       int
	warm, d time.Duration
	tmp     string
	otlp    string // the URL of the span receiver of the variants that trace
	quiet   quiet
	out     outputs
	tty     *os.File
	say     func(string, ...any)
	// algorithms is keys.algorithms of the servers of the main build ("": the default).
	algorithms string
}

// running is a started server with the scenarios prepared on it so far.
type running struct {
	v        variant
	s        *server
	f        *fixture
	prepared map[string]newWorker
}

func (ses *session) start(bin string, v variant) (*running, error) {
	algs := ses.algorithms
	if v.build != "go" && v.build != "openssl" {
		algs = "" // a baseline build may not know the setting
	}
	s, err := startServer(bin, filepath.Join(ses.tmp, strings.NewReplacer("/", "-", "@", "-", "=", "-").Replace(v.String())), v, ses.otlp, algs)
	if err != nil {
		return nil, err
	}
	return &running{v: v, s: s, f: &fixture{}, prepared: map[string]newWorker{}}, nil
}

func (ses *session) stopAll(servers map[variant]*running) {
	for _, r := range servers {
		r.s.stop()
	}
}

// measure runs sc once on r, preparing it the first time.
func (ses *session) measure(r *running, sc scenario) (row, error) {
	nw := r.prepared[sc.name]
	if nw == nil {
		var err error
		if nw, err = sc.prepare(r.s, r.f); err != nil {
			return row{}, fmt.Errorf("%s on %s: set-up: %w", sc.name, r.v, err)
		}
		r.prepared[sc.name] = nw
	}
	label := sc.title + " on " + r.v.String()
	prof, err := ses.out.forScenario(r.v, sc)
	if err != nil {
		return row{}, err
	}
	ses.quiet.await()
	var m measured
	if ses.tty != nil {
		m, err = run(r.s, label, nw, r.f.certs[sc.name], ses.c, ses.warm, ses.d, prof, ses.tty)
	} else {
		m, err = run(r.s, label, nw, r.f.certs[sc.name], ses.c, ses.warm, ses.d, prof, nil)
	}
	if err != nil {
		return row{}, fmt.Errorf("%s on %s: %w", sc.name, r.v, err)
	}
	out := newRow(sc, r.v, ses.c, m)
	ses.say("  %-60s %7.0f req/s  p99 %6s ms  %.3f ms CPU/req  %d errors  others %.0f%%", label, out.RPS, msStr(out.P99MS), out.CPUMS, out.Errors, out.OthersPct)
	return out, nil
}

// quiet waits for a shared machine to be idle enough to measure on.
type quiet struct {
	share float64
	wait  time.Duration
	say   func(string, ...any)
}

func (q quiet) await() {
	if q.share <= 0 {
		return
	}
	deadline := time.Now().Add(q.wait)
	for said := false; ; {
		o := othersBusy(time.Second)
		if o < q.share {
			return
		}
		if time.Now().After(deadline) {
			q.say("  the machine is still busy (others use %.0f%% of the CPUs); measuring anyway", o*100)
			return
		}
		if !said {
			q.say("  waiting for the machine to be idle: others use %.0f%% of the CPUs", o*100)
			said = true
		}
		time.Sleep(4 * time.Second)
	}
}

func chooseStores(s string) ([]string, error) {
	if s == "auto" {
		if _, err := exec.LookPath("redis-server"); err != nil {
			return []string{storeEmbedded}, nil
		}
		return []string{storeEmbedded, storeRedis}, nil
	}
	var out []string
	for _, x := range strings.Split(s, ",") {
		switch x = strings.TrimSpace(x); x {
		case storeEmbedded, storeRedis, storeSentinel, storeSentinelNoWait:
			out = append(out, x)
		default:
			return nil, fmt.Errorf("unknown store %q (embedded, redis, sentinel, sentinel-nowait)", x)
		}
	}
	return out, nil
}

func scenarioNames() string {
	var n []string
	for _, sc := range scenarios {
		n = append(n, sc.name)
	}
	return strings.Join(n, ", ")
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
