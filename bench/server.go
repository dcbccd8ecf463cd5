package main

import (
	"bufio"
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// moduleRoot is the directory of the Tokensmith module, which the binaries are built from.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return "", fmt.Errorf("go list -m: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// build compiles the server (or, with pkg "./bench", this program) into dir with the given
// tags and returns the binary's path.
//
// The binary run is a copy of what the linker wrote. On this kernel a file the external linker
// (cgo: the OpenSSL build) has just written stays in the page cache in 2 MB folios, and a
// process executing it maps its whole text and read-only data in 2 MB pages: the same OpenSSL
// binary idled at 46 MiB resident as linked and at 31.6 MiB as a copy. A deployed binary is
// a copy too (an image layer, a package), so the copy is what the peak RSS measures.
func build(root, dir, name, pkg string, tags ...string) (string, error) {
	bin := filepath.Join(dir, name)
	linked := bin + ".linked"
	args := []string{"build", "-o", linked}
	if pkg == "." {
		// As the Dockerfile builds it: without Gin's MessagePack support, which the server
		// never uses (9 MB of code whose pages would count in the peak RSS).
		tags = append(tags, "nomsgpack")
	}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build %s %s: %v\n%s", strings.Join(tags, ","), pkg, err, stderr.String())
	}
	defer os.Remove(linked)
	return bin, copyExecutable(linked, bin)
}

// copyExecutable writes a copy of src at dst in 64 KiB writes: through plain reads and writes,
// not copy_file_range, which may share the source's page-cache folios.
func copyExecutable(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	_, err = io.CopyBuffer(struct{ io.Writer }{out}, struct{ io.Reader }{in}, make([]byte, 64<<10))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// buildAt builds the server as it was at a git commit, from a copy of that commit's tree.
func buildAt(root, tmp, ref string) (string, error) {
	src := filepath.Join(tmp, "src-at-"+strings.NewReplacer("/", "-", "~", "-", "^", "-").Replace(ref))
	if err := os.MkdirAll(src, 0o700); err != nil {
		return "", err
	}
	archive := exec.Command("git", "-C", root, "archive", "--format=tar", ref)
	untar := exec.Command("tar", "-x", "-C", src)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		return "", err
	}
	untar.Stdin = pipe
	var stderr bytes.Buffer
	archive.Stderr = &stderr
	if err := untar.Start(); err != nil {
		return "", err
	}
	if err := archive.Run(); err != nil {
		_ = untar.Wait()
		return "", fmt.Errorf("git archive %s: %v %s", ref, err, stderr.String())
	}
	if err := untar.Wait(); err != nil {
		return "", fmt.Errorf("unpacking %s: %w", ref, err)
	}
	return build(src, tmp, "tokensmith-at-"+filepath.Base(src), ".")
}

// freeAddr returns a loopback address nothing listens on right now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// redisServer is a throwaway redis-server, started the way storage/redis/redistest starts
// one for the tests: loopback, a free port, no persistence.
type redisServer struct {
	addr string
	cmd  *exec.Cmd
}

func startRedis(dir string, extra ...string) (*redisServer, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	return runRedis(dir, addr, append([]string{"--port", port, "--bind", "127.0.0.1", "--dir", dir, "--save", "",
		"--appendonly", "no", "--protected-mode", "no", "--repl-diskless-sync-delay", "0", "--logfile", filepath.Join(dir, "redis.log")}, extra...)...)
}

// runRedis runs redis-server with args and waits until it answers on addr.
func runRedis(dir, addr string, args ...string) (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	r := &redisServer{addr: addr, cmd: cmd}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			fmt.Fprint(c, "PING\r\n")
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(line, "+PONG") {
				return r, nil
			}
		}
	}
	r.stop()
	return nil, errors.New("redis-server did not answer within 5s")
}

func (r *redisServer) stop() {
	_ = r.cmd.Process.Kill()
	_, _ = r.cmd.Process.Wait()
}

// sentinelSet is a master, one replica and a Sentinel monitoring them as "tokensmith", as
// storage/redis/redistest starts them for the failover test.
type sentinelSet struct {
	master, replica, sentinel *redisServer
}

func startSentinel(dir string) (*sentinelSet, error) {
	var set sentinelSet
	var err error
	if set.master, err = startRedis(filepath.Join(dir, "master")); err != nil {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(set.master.addr)
	if set.replica, err = startRedis(filepath.Join(dir, "replica"), "--replicaof", host, port); err != nil {
		set.stop()
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		set.stop()
		return nil, err
	}
	_, sport, _ := net.SplitHostPort(addr)
	sdir := filepath.Join(dir, "sentinel")
	if err := os.MkdirAll(sdir, 0o700); err != nil {
		set.stop()
		return nil, err
	}
	conf := filepath.Join(sdir, "sentinel.conf")
	body := fmt.Sprintf("port %s\nbind 127.0.0.1\ndir %s\nsentinel monitor tokensmith %s %s 1\nsentinel down-after-milliseconds tokensmith 1000\n", sport, sdir, host, port)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		set.stop()
		return nil, err
	}
	if set.sentinel, err = runRedis(sdir, addr, conf, "--sentinel", "--logfile", filepath.Join(sdir, "redis.log")); err != nil {
		set.stop()
		return nil, err
	}
	// Ready when the Sentinel lists the replica in sync: the server's /readyz waits for the
	// master to count it.
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if info := redisCommand(set.sentinel.addr, "SENTINEL REPLICAS tokensmith"); strings.Contains(info, "master-link-status\r\n$2\r\nok\r\n") {
			return &set, nil
		}
	}
	set.stop()
	return nil, errors.New("the Sentinel did not see the replica in sync within 20s")
}

func (s *sentinelSet) stop() {
	for _, r := range []*redisServer{s.sentinel, s.replica, s.master} {
		if r != nil {
			r.stop()
		}
	}
}

// redisCommand sends one inline command and returns what arrives within 200 ms.
func redisCommand(addr, command string) string {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return ""
	}
	defer c.Close()
	fmt.Fprint(c, command+"\r\n")
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	b, _ := io.ReadAll(c)
	return string(b)
}

// server is one Tokensmith process started by the benchmark.
type server struct {
	variant  variant
	url      string
	adminURL string
	token    string
	cmd      *exec.Cmd
	redis    *redisServer
	sentinel *sentinelSet
	logFile  *os.File
	// roots trusts the server's certificate when it serves TLS (variant.tls); nil on plain HTTP.
	roots *x509.CertPool
	// startToReady is the time from starting the process to its first ready /readyz.
	startToReady time.Duration
}

const benchAdminToken = "tsa_bench-admin-token-not-a-secret"

// startServer runs bin serve for v in its own data directory and waits until it is ready.
// Its log goes to a file, as a deployed server's would go somewhere: writing it is part of
// the cost measured. A variant that traces exports its spans to otlp; algorithms, when not
// empty, is its keys.algorithms.
func startServer(bin, dir string, v variant, otlp, algorithms string) (*server, error) {
	return startServerOn(bin, dir, v, otlp, algorithms, "", nil)
}

// readyTimeout is how long a server may take from its start to /readyz answering 200; the
// scale mode raises it, because an embedded store of a million records is read first.
var readyTimeout = 20 * time.Second

// startServerOn is startServer on a store prepared beforehand: storageURL, when not empty, is
// its TOKENSMITH_STORAGE, and rs the Redis behind it (nil for an embedded one), which the
// server then owns (its CPU is counted, and stop stops it).
func startServerOn(bin, dir string, v variant, otlp, algorithms, storageURL string, rs *redisServer) (*server, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	pub, err := freeAddr()
	if err != nil {
		return nil, err
	}
	adm, err := freeAddr()
	if err != nil {
		return nil, err
	}
	s := &server{variant: v, url: "http://" + pub, adminURL: "http://" + adm, token: benchAdminToken}
	var tlsEnv []string
	if v.tls {
		p, err := pki()
		if err != nil {
			return nil, err
		}
		if tlsEnv, err = p.writeServerFiles(dir); err != nil {
			return nil, err
		}
		s.url, s.roots = "https://"+pub, p.roots
	}
	// Only the variants that trace do: OTEL_* variables of the benchmark's own environment
	// would turn tracing on in every server.
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "OTEL_") })
	if v.tracing {
		env = append(env, "OTEL_EXPORTER_OTLP_ENDPOINT="+otlp)
	}
	env = append(env,
		"TOKENSMITH_LISTEN="+pub, "TOKENSMITH_ADMIN_LISTEN="+adm, "TOKENSMITH_ISSUER="+s.url,
		"TOKENSMITH_ADMIN_TOKEN="+benchAdminToken, "TOKENSMITH_DATA_DIR="+dir)
	switch {
	case storageURL != "":
		s.redis = rs
		env = append(env, "TOKENSMITH_STORAGE="+storageURL)
	case v.store == storeEmbedded:
		env = append(env, "TOKENSMITH_STORAGE=memory:")
	case v.store == storeRedis:
		if s.redis, err = startRedis(filepath.Join(dir, "redis")); err != nil {
			return nil, fmt.Errorf("redis: %w", err)
		}
		env = append(env, "TOKENSMITH_STORAGE=redis://"+s.redis.addr)
	case v.store == storeSentinel || v.store == storeSentinelNoWait:
		if s.sentinel, err = startSentinel(filepath.Join(dir, "redis")); err != nil {
			return nil, fmt.Errorf("redis sentinel: %w", err)
		}
		// Its Redis CPU is the master's, where every request's commands run.
		s.redis = s.sentinel.master
		wait := 1
		if v.store == storeSentinelNoWait {
			wait = 0
		}
		env = append(env, fmt.Sprintf("TOKENSMITH_STORAGE=redis+sentinel://%s/tokensmith?min_replicas=%d", s.sentinel.sentinel.addr, wait))
	}
	if algorithms != "" {
		env = append(env, "TOKENSMITH_KEYS_ALGORITHMS="+algorithms)
	}
	env = append(env, tlsEnv...)
	switch v.audit {
	case auditOff:
		env = append(env, "TOKENSMITH_AUDIT=off")
	case auditFile:
		env = append(env, "TOKENSMITH_AUDIT=file:"+filepath.Join(dir, "audit.jsonl"))
	case auditRedis:
		env = append(env, "TOKENSMITH_AUDIT=redis")
	}
	if s.logFile, err = os.Create(filepath.Join(dir, "server.log")); err != nil {
		s.stop()
		return nil, err
	}
	s.cmd = exec.Command(bin, "serve")
	s.cmd.Env = env
	s.cmd.Dir = dir
	s.cmd.Stdout, s.cmd.Stderr = s.logFile, s.logFile
	started := time.Now()
	if err := s.cmd.Start(); err != nil {
		s.stop()
		return nil, err
	}
	hc := s.setupClient(nil)
	for deadline := started.Add(readyTimeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if s.cmd.ProcessState != nil {
			break
		}
		resp, err := hc.Get(s.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				s.startToReady = time.Since(started)
				return s, nil
			}
		}
	}
	s.stop()
	log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
	return nil, fmt.Errorf("%s did not become ready; its log:\n%s", v, log)
}

// otlpSink is the receiver the tracing servers export their spans to: OTLP/HTTP on loopback,
// which reads every export request whole and answers it as a collector does (an empty
// ExportTraceServiceResponse is an empty protobuf message), keeping nothing but a count. A
// real collector's work to store the spans is not the server's cost.
type otlpSink struct {
	*httptest.Server
	requests, bytes atomic.Int64
}

func startOTLPSink() (*otlpSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &otlpSink{}
	s.Server = &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		s.requests.Add(1)
		s.bytes.Add(n)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	})}}
	s.Start()
	return s, nil
}

func (s *server) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _, _ = s.cmd.Process.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = s.cmd.Process.Kill()
			<-done
		}
	}
	switch {
	case s.sentinel != nil:
		s.sentinel.stop()
	case s.redis != nil:
		s.redis.stop()
	}
	if s.logFile != nil {
		s.logFile.Close()
	}
}

// usage is what /proc says about the server process and the machine.
type usage struct {
	cpu   time.Duration // the server's user + system time, all threads
	redis time.Duration // its Redis's, when it has one
	// self is this process's CPU time (the load generator).
	self time.Duration
	// busy is the CPU time the whole machine spent on anything but idling.
	busy time.Duration
}

// clockTick is USER_HZ, the unit of /proc/<pid>/stat times; Linux fixes it at 100 for every
// architecture Go runs on.
const clockTick = 10 * time.Millisecond

func (s *server) usage() (usage, error) {
	u := usage{self: processCPU()}
	var err error
	if u.cpu, err = pidCPU(s.cmd.Process.Pid); err != nil {
		return u, err
	}
	if s.redis != nil {
		if u.redis, err = pidCPU(s.redis.cmd.Process.Pid); err != nil {
			return u, err
		}
	}
	u.busy, err = machineBusy()
	return u, err
}

// pidCPU is a process's user + system time from /proc/<pid>/stat.
func pidCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields are counted after its ')'.
	rest := b[bytes.LastIndexByte(b, ')')+2:]
	f := strings.Fields(string(rest))
	// utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
	if len(f) < 13 {
		return 0, errors.New("short /proc stat line")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * clockTick, nil
}

// machineBusy is the time all CPUs together spent outside idle and I/O wait since boot
// (/proc/stat), stolen time included: on a shared machine that is what other work costs us.
func machineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, errors.New("unexpected /proc/stat")
	}
	var busy int64
	// user nice system idle iowait irq softirq steal: everything but idle (4) and iowait (5).
	for i, v := range f[1:9] {
		if i == 3 || i == 4 {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, err
		}
		busy += n
	}
	return time.Duration(busy) * clockTick, nil
}

// othersBusy measures, over d, the share of the machine's CPUs that processes other than this
// one were using (0 to 1).
func othersBusy(d time.Duration) float64 {
	b0, err0 := machineBusy()
	s0 := processCPU()
	time.Sleep(d)
	b1, err1 := machineBusy()
	s1 := processCPU()
	if err0 != nil || err1 != nil {
		return 0
	}
	return max(float64((b1-b0)-(s1-s0)), 0) / float64(d*time.Duration(runtime.NumCPU()))
}

// resetPeak starts a new peak-RSS window (Linux ≥ 4.0: writing 5 to clear_refs resets VmHWM).
func (s *server) resetPeak() {
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", s.cmd.Process.Pid), []byte("5"), 0)
}

// rss is VmRSS, the resident set now, in bytes.
func (s *server) rss() int64 { return procStatus(s.cmd.Process.Pid, "VmRSS:") }

// peakRSS is VmHWM, the highest resident set since the last resetPeak, in bytes.
func (s *server) peakRSS() int64 { return procStatus(s.cmd.Process.Pid, "VmHWM:") }

// rssParts is the resident set now, split by what the pages hold: the server's executable
// (its code, the Go runtime's tables, read-only data: file pages the kernel maps 64 KiB around
// every fault), the shared libraries it loaded (libc; libcrypto in the OpenSSL build) and
// anonymous memory (the Go heap and stacks, malloc's arenas, relocated library data), in bytes.
type rssParts struct{ exe, libs, anon int64 }

func (s *server) rssParts() rssParts { return rssPartsOf(s.cmd.Process.Pid) }

func rssPartsOf(pid int) rssParts {
	exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return rssParts{}
	}
	var p rssParts
	var path string
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if !strings.HasSuffix(f[0], ":") { // a mapping's header: range perms offset dev inode [path]
			path = ""
			if len(f) >= 6 {
				path = f[5]
			}
			continue
		}
		if len(f) < 2 || (f[0] != "Rss:" && f[0] != "Anonymous:") {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		n := kb << 10
		switch {
		case f[0] == "Anonymous:":
			// Copy-on-write pages of a file mapping (relocated data) are anonymous too.
			p.anon += n
			if path == exe {
				p.exe -= n
			} else if strings.HasPrefix(path, "/") {
				p.libs -= n
			}
		case path == exe:
			p.exe += n
		case strings.HasPrefix(path, "/"):
			p.libs += n
		}
	}
	return p
}

// procStatus is a size field of /proc/<pid>/status (in kB there), in bytes; 0 if unreadable.
func procStatus(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// alive reports an error if the server process has exited.
func (s *server) alive() error {
	if err := s.cmd.Process.Signal(syscall.Signal(0)); err != nil {
		return fmt.Errorf("%s exited: %w", s.variant, err)
	}
	return nil
}

// profiles says where to put the server's CPU profile and execution trace of each scenario's
// measured window (net/http/pprof on the admin listener); empty fields take none.
type profiles struct {
	cpu, trace string // file paths
}

// take starts the requested profiles of s for d and returns a function that waits for them
// and writes them out.
func (p profiles) take(s *server, d time.Duration) func() error {
	var waits []func() error
	fetch := func(path, file string) {
		errc := make(chan error, 1)
		go func() { errc <- s.download(path, file) }()
		waits = append(waits, func() error { return <-errc })
	}
	secs := max(int(d.Seconds()), 1)
	if p.cpu != "" {
		fetch(fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), p.cpu)
	}
	if p.trace != "" {
		// A trace of the whole window would be large; two seconds show the scheduling.
		fetch("/debug/pprof/trace?seconds="+strconv.Itoa(min(secs, 2)), p.trace)
	}
	return func() error {
		var errs []error
		for _, w := range waits {
			errs = append(errs, w())
		}
		// The heap as the window ends, live and allocated since the start: where the resident
		// set goes under load (go tool pprof -sample_index=inuse_space or alloc_space).
		if p.cpu != "" {
			errs = append(errs, s.download("/debug/pprof/heap", strings.TrimSuffix(p.cpu, ".pprof")+".heap.pprof"))
		}
		return errors.Join(errs...)
	}
}

// download saves an admin API answer (a profile) to file.
func (s *server) download(path, file string) error {
	req, err := http.NewRequest("GET", s.adminURL+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
