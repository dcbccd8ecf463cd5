package redis_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/storage/redis"
)

func TestOptions(t *testing.T) {
	t.Parallel()
	// With replicas to wait for, a read may take replica_timeout beyond read_timeout.
	waiting := redis.DefaultIOTimeout + redis.DefaultReplicaTimeout
	tests := []struct {
		url         string
		addrs       int
		master      string
		cluster     bool
		db          int
		read        time.Duration
		minReplicas int
		replicaWait time.Duration
		poolSize    int
	}{
		{url: "redis://127.0.0.1:6379", addrs: 1, read: redis.DefaultIOTimeout},
		{url: "redis://:pw@127.0.0.1:6379/3?read_timeout=200ms", addrs: 1, db: 3, read: 200 * time.Millisecond},
		{url: "redis+sentinel://h1:26379,h2:26379/mymaster", addrs: 2, master: "mymaster", read: waiting, minReplicas: 1},
		{url: "redis+cluster://h1:7000,h2:7001,h3:7002", addrs: 3, cluster: true, read: waiting, minReplicas: 1},
		{url: "redis+sentinel://h1:26379/m?min_replicas=0", addrs: 1, master: "m", read: redis.DefaultIOTimeout},
		{url: "redis+sentinel://h1:26379/m?min_replicas=2&replica_timeout=1s&read_timeout=100ms", addrs: 1, master: "m",
			read: 1100 * time.Millisecond, minReplicas: 2, replicaWait: time.Second},
		{url: "redis://h:1?min_replicas=1&replica_timeout=10ms", addrs: 1, read: redis.DefaultIOTimeout + 10*time.Millisecond,
			minReplicas: 1, replicaWait: 10 * time.Millisecond},
		{url: "redis://h:1?pool_size=1000&max_retries=-1&db=2", addrs: 1, db: 2, read: redis.DefaultIOTimeout, poolSize: 1000},
		{url: "rediss://h:1?skip_verify=true&min_replicas=1", addrs: 1, read: waiting, minReplicas: 1},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			t.Parallel()
			c, err := redis.Parse(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			o := c.Client
			if tc.replicaWait == 0 {
				tc.replicaWait = redis.DefaultReplicaTimeout
			}
			if len(o.Addrs) != tc.addrs || o.MasterName != tc.master || o.IsClusterMode != tc.cluster || o.DB != tc.db || o.ReadTimeout != tc.read ||
				o.PoolSize != tc.poolSize {
				t.Fatalf("options = %+v", o)
			}
			if o.ReadBufferSize != redis.DefaultBufferSize || o.WriteBufferSize != redis.DefaultBufferSize ||
				o.PipelineReadBufferSize != redis.DefaultBufferSize || o.PipelineWriteBufferSize != redis.DefaultBufferSize {
				t.Fatalf("buffers %d/%d, pipelines' %d/%d; want %d each", o.ReadBufferSize, o.WriteBufferSize,
					o.PipelineReadBufferSize, o.PipelineWriteBufferSize, redis.DefaultBufferSize)
			}
			if c.MinReplicas != tc.minReplicas || c.ReplicaTimeout != tc.replicaWait {
				t.Fatalf("min_replicas %d, replica_timeout %v; want %d, %v", c.MinReplicas, c.ReplicaTimeout, tc.minReplicas, tc.replicaWait)
			}
			if _, err := redis.Options(tc.url); err != nil {
				t.Fatalf("Options: %v", err)
			}
		})
	}
}

// TestOptionsRefused: a URL that cannot work is refused with an error naming what is wrong,
// not passed on to go-redis (pool_size=-5 panicked there, pool_size=1000000000 ran out of
// memory).
func TestOptionsRefused(t *testing.T) {
	t.Parallel()
	tests := []struct{ url, want string }{
		{"redis://h1:1,h2:2", "takes one host"},
		{"redis+sentinel://h1:26379", "master name"},
		{"redis://h/notanumber", "database"},
		{"memcached://h", "unknown scheme"},
		{"redis://h?read_timeout=soon", "read_timeout"},
		{"redis://h?read_timeout=0s", "read_timeout"},
		{"redis://h?dial_timeout=-1s", "dial_timeout"},
		{"redis://h?write_timeout=2m", "write_timeout"},
		{"redis://h?pool_timeout=0", "pool_timeout"},
		{"redis://h?pool_size=-5", "pool_size"},
		{"redis://h?pool_size=0", "pool_size"},
		{"redis://h?pool_size=1000000000", "pool_size"},
		{"redis://h?pool_size=ten", "pool_size"},
		{"redis://h?max_retries=-2", "max_retries"},
		{"redis://h?max_retries=100", "max_retries"},
		{"redis://h?db=-1", "db"},
		{"redis+cluster://h?db=1", "db"},
		{"redis://h?min_replicas=-1", "min_replicas"},
		{"redis://h?min_replicas=11", "min_replicas"},
		{"redis://h?replica_timeout=5ms", "replica_timeout"},
		{"redis://h?replica_timeout=11s", "replica_timeout"},
		{"redis://h?replica_timeout=1", "replica_timeout"},
		{"redis://h?min_replicas=1&min_replicas=2", "min_replicas: given 2 times"},
		{"redis://h?pool=5", `unknown parameter "pool"`},
		{"redis://h?skip_verify=true", "skip_verify"},
		{"rediss://h?skip_verify=maybe", "skip_verify"},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			t.Parallel()
			_, err := redis.Parse(tc.url)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one naming %q", err, tc.want)
			}
		})
	}
}
