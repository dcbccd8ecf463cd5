package chart

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestSchemaRefusesBadValues(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts Options
		want string // in the error
	}{
		{"a values file with a misspelt key", Options{ValueFiles: []string{filepath.Join("testdata", "breaks-schema.yaml")}}, "replicas"},
		{"unknown top-level key", Options{Set: []string{"replica=3"}}, "replica"},
		{"unknown storage type", Options{Set: []string{"storage.type=postgres"}}, "storage"},
		{"a key the chart sets itself", Options{Set: []string{"config.listen=:9000"}}, "listen"},
		{"a config key the server does not have", Options{Set: []string{"config.isuer=https://a.example"}}, "isuer"},
		{"log format", Options{Set: []string{"config.log_format=xml"}}, "log_format"},
		{"issuer not a URL", Options{Set: []string{"config.issuer=auth.example.com"}}, "issuer"},
		{"pull policy", Options{Set: []string{"image.pullPolicy=Sometimes"}}, "pullPolicy"},
		{"negative replicas", Options{Set: []string{"replicaCount=-1"}}, "replicaCount"},
		{"port out of range", Options{Set: []string{"service.port=70000"}}, "port"},
		{"redis URL scheme", Options{Set: []string{"storage.type=redis", "storage.redis.url=http://redis:6379"}}, "url"},
		{"misspelt nested key", Options{Set: []string{"autoscaling.maxReplica=5"}}, "maxReplica"},
		// The server refuses to start with it: the Go exporter has no OTLP/JSON.
		{"OTLP over JSON", Options{Set: []string{"otel.enabled=true", "otel.protocol=http/json"}}, "protocol"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Render(tc.opts)
			if err == nil {
				t.Fatal("got no error, want the schema to refuse the values")
			}
			if msg := err.Error(); !strings.Contains(msg, "schema") || !strings.Contains(msg, tc.want) {
				t.Errorf("got %q, want a schema error naming %q", msg, tc.want)
			}
		})
	}
}

func TestValidateRefusesBrokenSetups(t *testing.T) {
	t.Parallel()
	redis := []string{"storage.type=redis", "storage.redis.url=redis://redis-master:6379/0"}
	for _, tc := range []struct {
		name string
		set  []string
		want string
	}{
		{"replicas on the embedded store", []string{"replicaCount=3"}, "embedded store is a file that one process owns"},
		{"autoscaling on the embedded store", []string{"autoscaling.enabled=true"}, "autoscaling.enabled needs storage.type=redis"},
		{"redis without a URL", []string{"storage.type=redis"}, "needs storage.redis.url"},
		{"credentials twice", append(redis[:1:1], "storage.redis.url=redis://u:p@redis:6379", "storage.redis.password=x"), "already holds credentials"},
		{"two Redis passwords", append(redis, "storage.redis.password=x", "storage.redis.existingSecret=redis"), "not both"},
		{"two admin tokens", []string{"adminToken.value=tsa_0123456789abcdefghijklmnop", "adminToken.existingSecret=admin"}, "not both"},
		{"a short admin token", []string{"adminToken.value=secret"}, "too short"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Render(Options{Set: tc.set})
			if err == nil {
				t.Fatal("got no error, want the chart to refuse")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %q, want it to say %q", err, tc.want)
			}
		})
	}
	// The same values on Redis are accepted.
	for _, set := range [][]string{
		append(redis, "replicaCount=3"),
		append(redis, "autoscaling.enabled=true"),
	} {
		if _, err := Render(Options{Set: set}); err != nil {
			t.Errorf("%v: got %v, want it accepted", set, err)
		}
	}
}
