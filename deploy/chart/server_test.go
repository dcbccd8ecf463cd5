package chart

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// TestRenderedPodRunsTheServer runs the real server the way the rendered Deployment would:
// the container's environment (secretKeyRefs resolved from the rendered Secret, $(VAR)
// expanded as the kubelet does) and the ConfigMap's file, with the pod's paths and ports
// mapped to a temporary directory and loopback. It proves what rendering alone cannot: that
// the server accepts the configuration the chart writes and the admin token it generates, that
// the Redis URL with the password expanded into it connects, that the probes' paths answer 200,
// and that /metrics serves the names the dashboard and alerts query.
func TestRenderedPodRunsTheServer(t *testing.T) {
	bin := buildServer(t)
	for _, tc := range []struct {
		name  string
		redis bool
	}{
		{"embedded store", false},
		{"Redis with a password", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			set := []string{"config.issuer=https://auth.example.com"}
			if tc.redis {
				addr := startRedis(t, "p4ssw0rdFromTheRedisChart")
				set = append(set, "storage.type=redis", "replicaCount=2", "storage.redis.url=redis://"+addr+"/3",
					"storage.redis.password=p4ssw0rdFromTheRedisChart")
			}
			o := render(t, Options{Set: set})
			d := only(t, "Deployment", o.deployments)
			c := server(t, d)
			secret := only(t, "Secret", o.secrets)

			dir := t.TempDir()
			public, admin := freeAddr(t), freeAddr(t)
			paths := strings.NewReplacer("/var/lib/tokensmith", filepath.Join(dir, "data"), "/etc/tokensmith/config", dir)
			if err := os.WriteFile(filepath.Join(dir, "tokensmith.yaml"), []byte(only(t, "ConfigMap", o.configMaps).Data["tokensmith.yaml"]), 0o600); err != nil {
				t.Fatal(err)
			}
			environ := podEnv(t, c, secret)
			for i, kv := range environ {
				k, v, _ := strings.Cut(kv, "=")
				switch k {
				case "TOKENSMITH_LISTEN":
					v = public
				case "TOKENSMITH_ADMIN_LISTEN":
					v = admin
				default:
					v = paths.Replace(v)
				}
				environ[i] = k + "=" + v
			}
			if tc.redis && !hasPrefix(environ, "TOKENSMITH_STORAGE=redis://:p4ssw0rdFromTheRedisChart@") {
				t.Fatalf("the password was not expanded into TOKENSMITH_STORAGE: %v", environ)
			}

			cmd := exec.Command(bin, c.Args...)
			cmd.Env = append(environ, "PATH="+os.Getenv("PATH"), "HOME="+dir)
			var out syncBuffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_ = cmd.Process.Signal(syscall.SIGTERM)
				done := make(chan error, 1)
				go func() { done <- cmd.Wait() }()
				select {
				case <-done:
				case <-time.After(10 * time.Second):
					_ = cmd.Process.Kill()
					<-done
				}
				if t.Failed() {
					t.Logf("server output:\n%s", out.String())
				}
			})

			get := func(url, token string) (int, string) {
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				if token != "" {
					req.Header.Set("Authorization", "Bearer "+token)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return 0, err.Error()
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(b)
			}
			// The readiness probe's path, as the kubelet asks it, until the server is ready.
			ready := "http://" + public + c.ReadinessProbe.HTTPGet.Path
			deadline := time.Now().Add(60 * time.Second)
			for {
				if code, _ := get(ready, ""); code == http.StatusOK {
					break
				}
				if time.Now().After(deadline) || cmd.ProcessState != nil {
					t.Fatalf("%s never answered 200", ready)
				}
				time.Sleep(100 * time.Millisecond)
			}
			if code, body := get("http://"+public+c.LivenessProbe.HTTPGet.Path, ""); code != http.StatusOK {
				t.Errorf("liveness probe %s: got %d %s, want 200", c.LivenessProbe.HTTPGet.Path, code, body)
			}
			if code, body := get("http://"+admin+"/admin/clients", string(secret.Data["admin-token"])); code != http.StatusOK {
				t.Errorf("admin API with the Secret's token: got %d %s, want 200", code, body)
			}
			code, metrics := get("http://"+admin+"/metrics", "")
			if code != http.StatusOK {
				t.Fatalf("/metrics: got %d", code)
			}
			for _, name := range []string{"tokensmith_live_replicas", "tokensmith_signing_key_age_seconds", "process_resident_memory_bytes", "go_goroutines"} {
				if !regexp.MustCompile(`(?m)^` + name + `[ {]`).MatchString(metrics) {
					t.Errorf("/metrics has no %s", name)
				}
			}
		})
	}
}

func hasPrefix(environ []string, prefix string) bool {
	for _, kv := range environ {
		if strings.HasPrefix(kv, prefix) {
			return true
		}
	}
	return false
}

// podEnv is the container's environment as the kubelet would build it: values from the
// Secret, and $(NAME) replaced by the value of a variable defined before it.
func podEnv(t *testing.T, c corev1.Container, secret *corev1.Secret) []string {
	t.Helper()
	vals := map[string]string{}
	var out []string
	ref := regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)
	for _, e := range c.Env {
		v := e.Value
		switch {
		case e.ValueFrom == nil:
			v = ref.ReplaceAllStringFunc(v, func(m string) string {
				if x, ok := vals[m[2:len(m)-1]]; ok {
					return x
				}
				return m
			})
		case e.ValueFrom.SecretKeyRef != nil:
			r := e.ValueFrom.SecretKeyRef
			if r.Name != secret.Name {
				t.Fatalf("%s comes from Secret %s, which this test does not have", e.Name, r.Name)
			}
			b, ok := secret.Data[r.Key]
			if !ok {
				t.Fatalf("%s: Secret %s has no key %s", e.Name, r.Name, r.Key)
			}
			v = string(b)
		default:
			continue
		}
		vals[e.Name] = v
		out = append(out, e.Name+"="+v)
	}
	return out
}

// buildServer builds the tokensmith binary from the repository root into a temporary
// directory, once for all the test's cases.
func buildServer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tokensmith")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = filepath.Join(DeployDir(), "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startRedis runs a throwaway redis-server with a password on a free loopback port. Without
// redis-server the test is skipped, unless TOKENSMITH_REQUIRE_REDIS=1 makes that a failure.
func startRedis(t *testing.T, password string) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("TOKENSMITH_REQUIRE_REDIS") == "1" {
			t.Fatalf("TOKENSMITH_REQUIRE_REDIS=1 but redis-server is not installed: %v", err)
		}
		t.Skip("redis-server not installed (set TOKENSMITH_REQUIRE_REDIS=1 to fail instead)")
	}
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	dir := t.TempDir()
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no",
		"--requirepass", password, "--logfile", filepath.Join(dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if conn, err := net.Dial("tcp", addr); err == nil {
			conn.Close()
			return addr
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("redis-server on %s did not start", addr)
	return ""
}

// freeAddr is a loopback address with a port nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return "127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// syncBuffer collects the server's output from its two pipes.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
