package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// row is one scenario on one server variant, as printed and as written by -json.
type row struct {
	Scenario string `json:"scenario"`
	Title    string `json:"title"`
	Store    string `json:"store"`
	Build    string `json:"build"`
	Audit    string `json:"audit"`
	Tracing  bool   `json:"tracing,omitempty"`
	// TLS: the server's public listener served HTTPS (and asked for client certificates).
	TLS        bool    `json:"tls,omitempty"`
	Requests   int     `json:"requests"`
	Errors     int     `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
	RPS        float64 `json:"requests_per_second"`
	MeanMS     float64 `json:"mean_ms"`
	P50MS      float64 `json:"p50_ms"`
	P90MS      float64 `json:"p90_ms"`
	P99MS      float64 `json:"p99_ms"`
	MaxMS      float64 `json:"max_ms"`
	// QueueMS is c / throughput: by Little's law the mean time a request spends in the
	// server when c requests are always outstanding. The fairness target is P99 ≤ 3 × it.
	QueueMS    float64 `json:"queue_ms"`
	CPUMS      float64 `json:"server_cpu_ms_per_request"`
	RedisCPUMS float64 `json:"redis_cpu_ms_per_request,omitempty"`
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	// The resident set as the window ended, split: the executable's pages, the shared
	// libraries', and anonymous memory (heap, stacks, arenas).
	RSSExeMiB  float64 `json:"rss_executable_mib,omitempty"`
	RSSLibsMiB float64 `json:"rss_libraries_mib,omitempty"`
	RSSAnonMiB float64 `json:"rss_anonymous_mib,omitempty"`
	// OthersPct is how much of the machine other processes used meanwhile (a shared
	// machine): a row measured beside someone's build is not comparable.
	OthersPct float64 `json:"others_cpu_percent"`
	// Runs is how many runs the row is the median of (fresh issuance is run in rounds).
	Runs int `json:"runs,omitempty"`
}

// medianRow is the run with the median requests/s, carrying the median CPU per request, the
// smallest peak RSS (a run can only be inflated by what earlier scenarios left in memory) and
// the sum of the runs' errors; Runs says how many there were.
func medianRow(runs []row) row {
	byRPS := slices.Clone(runs)
	slices.SortFunc(byRPS, func(a, b row) int { return cmp.Compare(a.RPS, b.RPS) })
	out := byRPS[len(byRPS)/2]
	cpus := make([]float64, len(runs))
	redis := make([]float64, len(runs))
	out.Errors = 0
	for i, r := range runs {
		cpus[i], redis[i] = r.CPUMS, r.RedisCPUMS
		out.PeakRSSMiB = min(out.PeakRSSMiB, r.PeakRSSMiB)
		out.Errors += r.Errors
		if out.FirstError == "" {
			out.FirstError = r.FirstError
		}
	}
	slices.Sort(cpus)
	slices.Sort(redis)
	out.CPUMS, out.RedisCPUMS = cpus[len(cpus)/2], redis[len(redis)/2]
	out.Runs = len(runs)
	return out
}

func (r row) key() string {
	k := r.Scenario + "|" + r.Store + "|" + r.Build + "|" + r.Audit
	if r.Tracing {
		k += "|tracing"
	}
	if r.TLS {
		k += "|tls"
	}
	return k
}

func (r row) name() string {
	n := r.Title
	var extra []string
	if r.Build != "go" {
		extra = append(extra, strings.Replace(r.Build, "go@", "at ", 1))
	}
	if r.Audit != "" {
		extra = append(extra, "audit "+r.Audit)
	}
	if r.Tracing {
		extra = append(extra, "tracing")
	}
	if len(extra) > 0 {
		n += " [" + strings.Join(extra, ", ") + "]"
	}
	return n
}

func newRow(sc scenario, v variant, c int, m measured) row {
	msf := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	r := row{Scenario: sc.name, Title: sc.title, Store: v.store, Build: v.build, Audit: v.audit, Tracing: v.tracing, TLS: v.tls,
		Requests: m.requests, Errors: m.errors, FirstError: m.firstErr,
		P50MS: msf(quantile(m.lat, .5)), P90MS: msf(quantile(m.lat, .9)), P99MS: msf(quantile(m.lat, .99)),
		PeakRSSMiB: float64(m.peakRSS) / (1 << 20), OthersPct: m.others * 100,
		RSSExeMiB: float64(m.parts.exe) / (1 << 20), RSSLibsMiB: float64(m.parts.libs) / (1 << 20), RSSAnonMiB: float64(m.parts.anon) / (1 << 20)}
	if len(m.lat) > 0 {
		var sum time.Duration
		for _, l := range m.lat {
			sum += l
		}
		r.MeanMS = msf(sum / time.Duration(len(m.lat)))
		r.MaxMS = msf(m.lat[len(m.lat)-1])
	}
	if m.window > 0 {
		r.RPS = float64(m.requests) / m.window.Seconds()
	}
	if r.RPS > 0 {
		r.QueueMS = float64(c) / r.RPS * 1000
	}
	if m.requests > 0 {
		r.CPUMS = msf(m.cpu) / float64(m.requests)
		r.RedisCPUMS = msf(m.redisCPU) / float64(m.requests)
	}
	return r
}

// report is everything one run measured: what -json writes and -compare reads.
type report struct {
	Date        string      `json:"date"`
	Commit      string      `json:"commit"`
	Machine     string      `json:"machine"`
	GoVersion   string      `json:"go"`
	Concurrency int         `json:"concurrency"`
	Duration    string      `json:"duration"`
	LoadBefore  string      `json:"load_before"`
	LoadAfter   string      `json:"load_after"`
	Signatures  []signature `json:"signatures"`
	Rows        []row       `json:"rows"`
}

// find returns the row of a scenario on a server that does not trace.
func (rep *report) find(scenario, store, build, audit string) (row, bool) {
	for _, r := range rep.Rows {
		if r.Scenario == scenario && r.Store == store && r.Build == build && r.Audit == audit && !r.Tracing {
			return r, true
		}
	}
	return row{}, false
}

func (rep *report) signature(signer string) (signature, bool) {
	for _, s := range rep.Signatures {
		if s.Signer == signer {
			return s, true
		}
	}
	return signature{}, false
}

func commit(root string) string {
	out, err := exec.Command("git", "-C", root, "describe", "--always", "--dirty", "--abbrev=12").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d CPUs, %s/%s", model, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
}

// loadAvg is the 1, 5 and 15 minute load averages: the machine is shared, so every report
// says how busy it was.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func f0(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }

// msStr renders milliseconds with a precision that suits their size.
func msStr(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func (rep *report) print(w io.Writer) {
	fmt.Fprintf(w, "Tokensmith load benchmark, %s, commit %s\n%s, %s; c=%d, %s per scenario; load average %s before, %s after\n"+
		"CPU ms/req is the server process's CPU time per answer (Redis ms/req its Redis's); others %% is the share of the CPUs other processes used meanwhile;\n"+
		"RSS exe/libs/anon is the resident set in MiB as the window ends: the executable's pages, the shared libraries', anonymous memory;\n"+
		"rows of several runs show the run with the median req/s and the median CPU ms/req\n\n",
		rep.Date, rep.Commit, rep.Machine, rep.GoVersion, rep.Concurrency, rep.Duration, rep.LoadBefore, rep.LoadAfter)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tstore\treq/s\tp50 ms\tp90 ms\tp99 ms\tp99÷(c/X)\terrors\tCPU ms/req\tRedis ms/req\tpeak RSS MiB\tRSS exe/libs/anon\tothers %\truns\t")
	for _, r := range rep.Rows {
		tail := "-"
		if r.QueueMS > 0 {
			tail = strconv.FormatFloat(r.P99MS/r.QueueMS, 'f', 2, 64)
		}
		redis := "-"
		if r.Store != storeEmbedded {
			redis = msStr(r.RedisCPUMS)
		}
		parts := "-"
		if r.RSSExeMiB > 0 {
			parts = fmt.Sprintf("%.1f/%.1f/%.1f", r.RSSExeMiB, r.RSSLibsMiB, r.RSSAnonMiB)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%.1f\t%s\t%.0f\t%d\t\n", r.name(), r.Store, f0(r.RPS),
			msStr(r.P50MS), msStr(r.P90MS), msStr(r.P99MS), tail, r.Errors, msStr(r.CPUMS), redis, r.PeakRSSMiB, parts, r.OthersPct, max(r.Runs, 1))
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, r := range rep.Rows {
		if r.FirstError != "" {
			fmt.Fprintf(w, "first error, %s on %s: %s\n", r.name(), r.Store, r.FirstError)
		}
	}
	for _, s := range rep.Signatures {
		fmt.Fprintf(w, "one RS256 signature, %s signer (%s), one core: %.3f ms CPU (%.3f ms elapsed; median of %d samples through the run); with all %d cores signing: %.3f ms CPU each\n",
			s.Signer, s.Version, ms(s.CPU), ms(s.Wall), s.Samples, runtime.NumCPU(), ms(s.Loaded))
	}
	for _, store := range []string{storeEmbedded, storeRedis} {
		fresh, ok := rep.find("fresh", store, "go", "")
		if !ok {
			continue
		}
		if sig, ok := rep.signature("go"); ok && sig.CPU > 0 {
			fmt.Fprintf(w, "%s: fresh issuance costs %.3f ms of server CPU per token = %.2f × one Go signature (target ≤ 1.15), %.2f × one made while all cores sign\n",
				store, fresh.CPUMS, fresh.CPUMS/ms(sig.CPU), fresh.CPUMS/ms(sig.Loaded))
		}
		if reused, ok := rep.find("reused", store, "go", ""); ok && fresh.RPS > 0 {
			fmt.Fprintf(w, "%s: reuse answers %.1f × as many requests/s as fresh issuance (target ≥ 10)\n", store, reused.RPS/fresh.RPS)
		}
		if fresh.QueueMS > 0 {
			fmt.Fprintf(w, "%s: fresh p99 %.1f ms = %.2f × the mean time in the server c/X = %.1f ms (target ≤ 3)\n",
				store, fresh.P99MS, fresh.P99MS/fresh.QueueMS, fresh.QueueMS)
		}
		if o, ok := rep.find("fresh", store, "openssl", ""); ok && fresh.RPS > 0 {
			fmt.Fprintf(w, "%s: OpenSSL build issues %.2f × the pure-Go build's fresh requests/s (issue 12: ≥ 2.2)\n", store, o.RPS/fresh.RPS)
			if sig, ok := rep.signature("openssl"); ok && sig.CPU > 0 {
				fmt.Fprintf(w, "%s: OpenSSL build costs %.3f ms of server CPU per fresh token = %.2f × one OpenSSL signature (issue 12: ≤ 1.2), %.2f × one made while all cores sign\n",
					store, o.CPUMS, o.CPUMS/ms(sig.CPU), o.CPUMS/ms(sig.Loaded))
			}
		}
		for _, b := range rep.Rows {
			ref, ok := strings.CutPrefix(b.Build, "go@")
			if !ok || b.Store != store {
				continue
			}
			if r, ok := rep.find(b.Scenario, store, "go", ""); ok && b.QueueMS > 0 && r.QueueMS > 0 {
				fmt.Fprintf(w, "%s: %s at %s → now: %s → %s req/s (%+.1f %%), p50 %s → %s ms, p99 %s → %s ms, p99÷(c/X) %.2f → %.2f\n",
					store, b.Title, ref, f0(b.RPS), f0(r.RPS), pct(r.RPS, b.RPS), msStr(b.P50MS), msStr(r.P50MS),
					msStr(b.P99MS), msStr(r.P99MS), b.P99MS/b.QueueMS, r.P99MS/r.QueueMS)
			}
		}
		for _, r := range rep.Rows {
			if r.Scenario != "fresh" || r.Store != store || r.Build != "go" || r.Audit == "" {
				continue
			}
			fmt.Fprintf(w, "%s: fresh issuance with audit %s: %+.1f %% requests/s, %+.1f %% CPU per token against the default configuration\n",
				store, r.Audit, pct(r.RPS, fresh.RPS), pct(r.CPUMS, fresh.CPUMS))
		}
		for _, r := range rep.Rows {
			if r.Scenario == "fresh" && r.Store == store && r.Build == "go" && r.Tracing {
				fmt.Fprintf(w, "%s: fresh issuance with tracing on (every request traced, exported over OTLP/HTTP): %+.1f %% requests/s, %+.1f %% CPU per token against tracing off (issue 21: ≥ −5 %%)\n",
					store, pct(r.RPS, fresh.RPS), pct(r.CPUMS, fresh.CPUMS))
			}
		}
	}
	for _, store := range []string{storeEmbedded, storeRedis} {
		rep.printAlgorithms(w, store)
		rep.printClientAuth(w, store)
	}
}

// printClientAuth is one store's fresh issuance per client authentication and binding, with
// the server CPU each adds per token to the secret path it is compared with: the secret on
// plain HTTP for the key-based ones, the secret over the same TLS server for the certificate
// ones, so that TLS itself is not counted as the certificate's cost.
func (rep *report) printClientAuth(w io.Writer, store string) {
	type line struct {
		sc, base string
	}
	var lines []line
	for _, l := range []line{{"fresh", ""}, {"federated", "fresh"}, {"private-key-jwt", "fresh"}, {"dpop", "fresh"},
		{"fresh-tls", "fresh"}, {"mtls", "fresh-tls"}, {"mtls-self-signed", "fresh-tls"}, {"mtls-bound", "fresh-tls"}} {
		if _, ok := rep.find(l.sc, store, "go", ""); ok {
			lines = append(lines, l)
		}
	}
	if len(lines) < 2 {
		return
	}
	fmt.Fprintf(w, "\n%s: fresh issuance per client authentication (over TLS: keep-alive connections, one handshake per connection, not per request)\n", store)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\ttokens/s\tp99 ms\tCPU ms/token\tCPU over\tcompared with\t")
	for _, l := range lines {
		r, _ := rep.find(l.sc, store, "go", "")
		over := "-\t"
		if b, ok := rep.find(l.base, store, "go", ""); ok && l.base != "" {
			over = fmt.Sprintf("%+.3f ms\t%s", r.CPUMS-b.CPUMS, l.base)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", r.Title, f0(r.RPS), msStr(r.P99MS), msStr(r.CPUMS), over)
	}
	tw.Flush()
}

// printAlgorithms is one store's fresh issuance per signing algorithm: tokens/s and server CPU
// per token, as multiples of pure-Go RS256 fresh issuance and of reuse. The targets: ES256
// and EdDSA at least 4 × the first and 0.6 × the second.
func (rep *report) printAlgorithms(w io.Writer, store string) {
	base, ok := rep.find("fresh", store, "go", "")
	if !ok {
		return
	}
	type line struct {
		name string
		r    row
	}
	var lines []line
	for _, sc := range []string{"fresh-ps256", "fresh-es256", "fresh-eddsa"} {
		if r, ok := rep.find(sc, store, "go", ""); ok {
			lines = append(lines, line{algorithmScenario(sc) + ", Go", r})
		}
	}
	if len(lines) == 0 {
		return
	}
	head := []line{{"RS256, Go", base}}
	if o, ok := rep.find("fresh", store, "openssl", ""); ok {
		head = append(head, line{"RS256, OpenSSL", o})
	}
	lines = append(head, lines...)
	reused, haveReused := rep.find("reused", store, "go", "")
	fmt.Fprintf(w, "\n%s: fresh issuance per signing algorithm (targets: ES256 and EdDSA ≥ 4 × RS256 Go and ≥ 0.6 × reuse)\n", store)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "algorithm, signer\ttokens/s\tp99 ms\tCPU ms/token\t× RS256 Go\t× reuse\t")
	for _, l := range lines {
		vsReuse := "-"
		if haveReused && reused.RPS > 0 {
			vsReuse = strconv.FormatFloat(l.r.RPS/reused.RPS, 'f', 2, 64)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.2f\t%s\t\n", l.name, f0(l.r.RPS), msStr(l.r.P99MS), msStr(l.r.CPUMS), l.r.RPS/base.RPS, vsReuse)
	}
	if haveReused {
		fmt.Fprintf(tw, "reuse (RS256, Go)\t%s\t%s\t%s\t%.2f\t1.00\t\n", f0(reused.RPS), msStr(reused.P99MS), msStr(reused.CPUMS), reused.RPS/base.RPS)
	}
	tw.Flush()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func pct(v, base float64) float64 {
	if base == 0 {
		return 0
	}
	return (v/base - 1) * 100
}

func (rep *report) write(path string) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func readReport(path string) (*report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &rep, nil
}

// compare prints, for every row both runs have, how requests/s, p99 and CPU per request moved.
func compare(w io.Writer, old, cur *report) {
	fmt.Fprintf(w, "\nChange from %s (commit %s, load %s):\n\n", old.Date, old.Commit, old.LoadBefore)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tstore\treq/s old\tnew\tΔ\tp99 ms old\tnew\tΔ\tCPU ms/req old\tnew\tΔ\t")
	for _, r := range cur.Rows {
		var o row
		found := false
		for _, x := range old.Rows {
			if x.key() == r.key() {
				o, found = x, true
				break
			}
		}
		if !found {
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%+.1f%%\t%s\t%s\t%+.1f%%\t%s\t%s\t%+.1f%%\t\n", r.name(), r.Store,
			f0(o.RPS), f0(r.RPS), pct(r.RPS, o.RPS), msStr(o.P99MS), msStr(r.P99MS), pct(r.P99MS, o.P99MS),
			msStr(o.CPUMS), msStr(r.CPUMS), pct(r.CPUMS, o.CPUMS))
	}
	tw.Flush()
}
