package redis_test

import (
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/storage/redis"
)

func TestOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url     string
		addrs   int
		master  string
		cluster bool
		db      int
		read    time.Duration
		wantErr bool
	}{
		{url: "redis://127.0.0.1:6379", addrs: 1, read: redis.DefaultIOTimeout},
		{url: "redis://:pw@127.0.0.1:6379/3?read_timeout=200ms", addrs: 1, db: 3, read: 200 * time.Millisecond},
		{url: "redis+sentinel://h1:26379,h2:26379/mymaster", addrs: 2, master: "mymaster", read: redis.DefaultIOTimeout},
		{url: "redis+cluster://h1:7000,h2:7001,h3:7002", addrs: 3, cluster: true, read: redis.DefaultIOTimeout},
		{url: "redis://h1:1,h2:2", wantErr: true},
		{url: "redis+sentinel://h1:26379", wantErr: true},
		{url: "redis://h/notanumber", wantErr: true},
		{url: "redis://h?read_timeout=soon", wantErr: true},
		{url: "memcached://h", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			t.Parallel()
			o, err := redis.Options(tc.url)
			if tc.wantErr {
				if err == nil {
					t.Fatal("want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(o.Addrs) != tc.addrs || o.MasterName != tc.master || o.IsClusterMode != tc.cluster || o.DB != tc.db || o.ReadTimeout != tc.read {
				t.Fatalf("options = %+v", o)
			}
		})
	}
}
