// Package redistest starts throwaway redis-server processes on free loopback ports for tests:
// one node, a replica, a Sentinel set or a Redis Cluster, and freezes, kills and restarts them. It is the one place tests get Redis from. Without redis-server
// on the PATH a test is skipped, unless TOKENSMITH_REQUIRE_REDIS=1 (as in CI), where it fails.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Server is one redis-server process.
type Server struct {
	t    testing.TB
	Addr string
	dir  string
	args []string
	cmd  *exec.Cmd
	// master is the server this one replicates (StartReplica), nil for a master.
	master *Server
}

func binary(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("TOKENSMITH_REQUIRE_REDIS") == "1" {
			t.Fatalf("TOKENSMITH_REQUIRE_REDIS=1 but redis-server is not installed: %v", err)
		}
		t.Skip("redis-server not installed (set TOKENSMITH_REQUIRE_REDIS=1 to fail instead)")
	}
	return p
}

// freePort finds a loopback port that is free, and whose cluster bus port (+10000) is too.
func freePort(t testing.TB) int {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if port+10000 > 65535 {
			continue
		}
		if bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000)); err == nil {
			bus.Close()
			return port
		}
	}
	t.Fatal("no free port pair for redis")
	return 0
}

// Start runs a single redis-server without persistence and waits until it answers.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	bin := binary(t)
	port := freePort(t)
	s := &Server{t: t, Addr: "127.0.0.1:" + strconv.Itoa(port), dir: t.TempDir()}
	// A replica's full sync starts at once, not after the default 5 s wait for more replicas.
	s.args = append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", s.dir,
		"--save", "", "--appendonly", "no", "--protected-mode", "no", "--repl-diskless-sync-delay", "0",
		"--logfile", filepath.Join(s.dir, "redis.log")}, extra...)
	s.cmd = exec.Command(bin, s.args...)
	s.start()
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	s.cmd = exec.Command(s.cmd.Path, s.args...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("redis-server: %v", err)
	}
	rdb := goredis.NewClient(&goredis.Options{Addr: s.Addr, MaxRetries: -1})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	s.t.Fatalf("redis-server on %s did not answer:\n%s", s.Addr, log)
}

// Stop kills the server (as a crash would) and waits for it to exit.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil || s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
}

// Restart starts the server again on the same port (empty, without persistence).
func (s *Server) Restart() { s.start() }

// RestartAsReplicaOf starts a stopped server again on the same port as a replica of master (as
// a failed master comes back after a failover) and waits until it has synchronised.
func (s *Server) RestartAsReplicaOf(master *Server) {
	s.t.Helper()
	host, port, _ := strings.Cut(master.Addr, ":")
	args := s.args
	s.args = append(slices.Clone(args), "--replicaof", host, port)
	s.start()
	s.args = args
	s.waitInfo("replication", "master_link_status:up")
}

// URL is the storage URL of the server.
func (s *Server) URL() string { return "redis://" + s.Addr }

// Freeze stops the process with SIGSTOP, as a partition would cut it off: it keeps its
// connections but answers nothing, and replicates nothing.
func (s *Server) Freeze() { s.signal(syscall.SIGSTOP) }

// Thaw resumes a frozen process (SIGCONT).
func (s *Server) Thaw() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("redis-server on %s: %v", s.Addr, err)
	}
}

// Log is what the server has logged so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	return string(b)
}

// Client is a go-redis client of this server alone.
func (s *Server) Client() *goredis.Client {
	return goredis.NewClient(&goredis.Options{Addr: s.Addr, MaxRetries: -1})
}

// StartReplica starts a server replicating master and waits until it has synchronised.
func StartReplica(t testing.TB, master *Server, extra ...string) *Server {
	t.Helper()
	host, port, _ := strings.Cut(master.Addr, ":")
	r := Start(t, append([]string{"--replicaof", host, port}, extra...)...)
	r.waitInfo("replication", "master_link_status:up")
	r.master = master
	return r
}

// CaughtUp waits until this replica has acknowledged every write its master took so far (WAIT
// on the master, up to 20 s): after a Thaw, a starved replica may need longer than a
// replica_timeout to catch up, and a test's next write must not depend on how loaded the
// machine is.
func (s *Server) CaughtUp() {
	s.t.Helper()
	if s.master == nil {
		s.t.Fatalf("redis-server on %s is no replica", s.Addr)
	}
	rdb := s.master.Client()
	defer rdb.Close()
	n, err := rdb.Do(context.Background(), "WAIT", 1, 20000).Int()
	if err != nil || n < 1 {
		s.t.Fatalf("replica %s did not catch up with %s in 20 s: %d %v", s.Addr, s.master.Addr, n, err)
	}
}

// waitInfo waits up to 20 s until INFO section (CLUSTER INFO for "cluster") contains want.
func (s *Server) waitInfo(section, want string) {
	s.t.Helper()
	rdb := s.Client()
	defer rdb.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var info string
		if section == "cluster" {
			info, _ = rdb.ClusterInfo(context.Background()).Result()
		} else {
			info, _ = rdb.Info(context.Background(), section).Result()
		}
		if strings.Contains(info, want) {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on %s: no %q in INFO %s:\n%s", s.Addr, want, section, info)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Cluster is a Redis Cluster's processes, masters and replicas.
type Cluster struct {
	Nodes []*Server
	// URL is the redis+cluster:// storage URL (its default min_replicas=1 the replicas meet).
	URL string
}

// Node is the process listening on addr.
func (c *Cluster) Node(addr string) *Server {
	for _, s := range c.Nodes {
		if s.Addr == addr {
			return s
		}
	}
	return nil
}

// StartCluster starts a Redis Cluster (NewCluster) and returns its storage URL.
func StartCluster(t testing.TB, n int) string { return NewCluster(t, n).URL }

// NewCluster starts a Redis Cluster of n masters (at least 3), each with one replica, joined
// with redis-cli --cluster create, and waits until the cluster is ok and every master has its
// replica.
func NewCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	var addrs []string
	var nodes []*Server
	for range 2 * n {
		s := Start(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000")
		addrs = append(addrs, s.Addr)
		nodes = append(nodes, s)
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redis-cli: %v", err)
	}
	out, err := exec.Command(cli, append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "1", "--cluster-yes")...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, s := range nodes {
		s.waitInfo("cluster", "cluster_state:ok")
	}
	for _, s := range nodes {
		rdb := s.Client()
		info, _ := rdb.Info(context.Background(), "replication").Result()
		rdb.Close()
		if strings.Contains(info, "role:master") {
			s.waitInfo("replication", "state=online")
		} else {
			s.waitInfo("replication", "master_link_status:up")
		}
	}
	return &Cluster{Nodes: nodes, URL: "redis+cluster://" + strings.Join(addrs, ",")}
}

// Sentinel is a master, its replica and one Sentinel monitoring them as "tokensmith", which
// notices a master down after a second and then promotes the replica.
type Sentinel struct {
	Master, Replica, Sentinel *Server
	// URL is the redis+sentinel:// storage URL (its default min_replicas=1 the replica meets).
	URL string
}

// StartSentinel starts a Sentinel set (NewSentinel) and returns its storage URL.
func StartSentinel(t testing.TB) string { return NewSentinel(t).URL }

// NewSentinel starts a master, a replica of it and a Sentinel that knows both.
func NewSentinel(t testing.TB) *Sentinel {
	t.Helper()
	master := Start(t)
	replica := StartReplica(t, master)
	port := freePort(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	body := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor tokensmith %s 1\n"+
		"sentinel down-after-milliseconds tokensmith 1000\nsentinel failover-timeout tokensmith 5000\n",
		port, dir, strings.Replace(master.Addr, ":", " ", 1))
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Server{t: t, Addr: "127.0.0.1:" + strconv.Itoa(port), dir: dir,
		args: []string{conf, "--sentinel", "--logfile", filepath.Join(dir, "redis.log")}}
	s.cmd = exec.Command(binary(t))
	s.start()
	t.Cleanup(s.Stop)
	set := &Sentinel{Master: master, Replica: replica, Sentinel: s, URL: "redis+sentinel://" + s.Addr + "/tokensmith"}
	set.WaitMaster(master.Addr, 10*time.Second)
	// Wait until the Sentinel knows the replica too, or it could not promote it.
	rdb := goredis.NewSentinelClient(&goredis.Options{Addr: s.Addr})
	defer rdb.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		replicas, err := rdb.Replicas(context.Background(), "tokensmith").Result()
		if err == nil && len(replicas) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sentinel does not know the replica: %v", err)
		}
	}
	return set
}

// WaitMaster waits until the Sentinel names addr as the master, and reports how long that took.
func (s *Sentinel) WaitMaster(addr string, timeout time.Duration) time.Duration {
	s.Sentinel.t.Helper()
	rdb := goredis.NewSentinelClient(&goredis.Options{Addr: s.Sentinel.Addr})
	defer rdb.Close()
	start := time.Now()
	for {
		got, err := rdb.GetMasterAddrByName(context.Background(), "tokensmith").Result()
		if err == nil && len(got) == 2 && got[0]+":"+got[1] == addr {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			log, _ := os.ReadFile(filepath.Join(s.Sentinel.dir, "redis.log"))
			s.Sentinel.t.Fatalf("sentinel does not name %s the master after %v (it says %v, %v):\n%s", addr, timeout, got, err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
