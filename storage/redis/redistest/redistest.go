// Package redistest starts throwaway redis-server processes on free loopback ports for tests:
// one node, or a Redis Cluster. It is the one place tests get Redis from. Without redis-server
// on the PATH a test is skipped, unless TOKENSMITH_REQUIRE_REDIS=1 (as in CI), where it fails.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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
	s.args = append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", s.dir,
		"--save", "", "--appendonly", "no", "--protected-mode", "no", "--logfile", filepath.Join(s.dir, "redis.log")}, extra...)
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

// URL is the storage URL of the server.
func (s *Server) URL() string { return "redis://" + s.Addr }

// StartCluster starts n masters with cluster-enabled, joins them with redis-cli --cluster
// create, and waits for cluster_state:ok. It returns the redis+cluster:// URL.
func StartCluster(t testing.TB, n int) string {
	t.Helper()
	var addrs []string
	for range n {
		s := Start(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000")
		addrs = append(addrs, s.Addr)
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redis-cli: %v", err)
	}
	out, err := exec.Command(cli, append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, a := range addrs {
		rdb := goredis.NewClient(&goredis.Options{Addr: a})
		for {
			info, _ := rdb.ClusterInfo(context.Background()).Result()
			if strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("cluster not ok on %s: %s", a, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
		rdb.Close()
	}
	return fmt.Sprintf("redis+cluster://%s", strings.Join(addrs, ","))
}

// StartSentinel starts a master and one Sentinel monitoring it as "tokensmith", and returns
// the redis+sentinel:// URL.
func StartSentinel(t testing.TB) string {
	t.Helper()
	master := Start(t)
	port := freePort(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	body := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor tokensmith %s 1\nsentinel down-after-milliseconds tokensmith 2000\n",
		port, dir, strings.Replace(master.Addr, ":", " ", 1))
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Server{t: t, Addr: "127.0.0.1:" + strconv.Itoa(port), dir: dir,
		args: []string{conf, "--sentinel", "--logfile", filepath.Join(dir, "redis.log")}}
	s.cmd = exec.Command(binary(t))
	s.start()
	t.Cleanup(s.Stop)
	// Wait until the Sentinel knows the master.
	rdb := goredis.NewSentinelClient(&goredis.Options{Addr: s.Addr})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		addr, err := rdb.GetMasterAddrByName(context.Background(), "tokensmith").Result()
		if err == nil && len(addr) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sentinel does not know the master: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "redis+sentinel://" + s.Addr + "/tokensmith"
}
