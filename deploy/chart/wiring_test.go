package chart

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// envIndex is the position of a variable in the container's env, -1 when absent.
func envIndex(c corev1.Container, name string) int {
	return slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == name })
}

func TestRedisCredentialsComeFromSecrets(t *testing.T) {
	t.Parallel()
	base := []string{"storage.type=redis", "storage.redis.url=redis://redis-master:6379/0"}
	for _, tc := range []struct {
		name       string
		set        []string
		wantURL    string // TOKENSMITH_STORAGE's value; empty when it comes from a Secret
		wantRef    string // Secret/key the password or URL is read from
		ownSecret  []string
		noPassword bool
	}{
		{"the Redis chart's Secret", append(base, "storage.redis.existingSecret=redis"),
			"redis://:$(TOKENSMITH_REDIS_PASSWORD)@redis-master:6379/0", "redis/redis-password", []string{"admin-token"}, false},
		{"an ACL user and a password in values", append(base, "storage.redis.username=tokensmith", "storage.redis.password=s3cret"),
			"redis://tokensmith:$(TOKENSMITH_REDIS_PASSWORD)@redis-master:6379/0", "tokensmith/redis-password", []string{"admin-token", "redis-password"}, false},
		{"no password", base, "redis://redis-master:6379/0", "", []string{"admin-token"}, true},
		{"the whole URL from a Secret", []string{"storage.type=redis", "storage.redis.urlSecret.name=redis-url", "adminToken.existingSecret=admin"},
			"", "redis-url/url", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := render(t, Options{Set: tc.set})
			c := server(t, only(t, "Deployment", o.deployments))
			st, _ := env(c, "TOKENSMITH_STORAGE")
			if got := st.Value; got != tc.wantURL {
				t.Errorf("TOKENSMITH_STORAGE: got %q, want %q", got, tc.wantURL)
			}
			pw, hasPW := env(c, "TOKENSMITH_REDIS_PASSWORD")
			if hasPW == tc.noPassword {
				t.Fatalf("TOKENSMITH_REDIS_PASSWORD set: got %v, want %v", hasPW, !tc.noPassword)
			}
			ref := st.ValueFrom
			if hasPW {
				ref = pw.ValueFrom
				// Kubernetes expands $(VAR) only from variables defined before.
				if envIndex(c, "TOKENSMITH_REDIS_PASSWORD") > envIndex(c, "TOKENSMITH_STORAGE") {
					t.Error("TOKENSMITH_REDIS_PASSWORD comes after TOKENSMITH_STORAGE, which refers to it")
				}
			}
			got := ""
			if ref != nil && ref.SecretKeyRef != nil {
				got = ref.SecretKeyRef.Name + "/" + ref.SecretKeyRef.Key
			}
			if got != tc.wantRef {
				t.Errorf("credential from: got %q, want %q", got, tc.wantRef)
			}
			var keys []string
			for _, s := range o.secrets {
				for k := range s.Data {
					keys = append(keys, k)
				}
			}
			slices.Sort(keys)
			if !slices.Equal(keys, tc.ownSecret) {
				t.Errorf("the chart's Secret holds %v, want %v", keys, tc.ownSecret)
			}
		})
	}
}

func TestAdminToken(t *testing.T) {
	t.Parallel()
	generated := func() string {
		o := render(t, Options{})
		return string(only(t, "Secret", o.secrets).Data["admin-token"])
	}
	first, second := generated(), generated()
	if !regexp.MustCompile(`^tsa_[A-Za-z0-9]{43}$`).MatchString(first) {
		t.Errorf("generated admin token %q: want tsa_ and 43 letters and digits (over 250 bits)", first)
	}
	// Without a cluster lookup finds nothing, so each rendering generates anew; installed, the
	// chart reads the Secret back and keeps the token.
	if first == second {
		t.Error("two renderings generated the same admin token")
	}
	given := "tsa_" + strings.Repeat("x1Y2", 10)
	o := render(t, Options{Set: []string{"adminToken.value=" + given}})
	if got := string(only(t, "Secret", o.secrets).Data["admin-token"]); got != given {
		t.Errorf("admin token from values: got %q, want %q", got, given)
	}
	o = render(t, Options{Set: []string{"adminToken.existingSecret=mine", "adminToken.existingSecretKey=token"}})
	if len(o.secrets) != 0 {
		t.Errorf("with an existing Secret the chart made %d of its own", len(o.secrets))
	}
	tok, _ := env(server(t, only(t, "Deployment", o.deployments)), "TOKENSMITH_ADMIN_TOKEN")
	if ref := tok.ValueFrom.SecretKeyRef; ref.Name != "mine" || ref.Key != "token" {
		t.Errorf("admin token from %s/%s, want mine/token", ref.Name, ref.Key)
	}
}

func TestTLSFromSecrets(t *testing.T) {
	t.Parallel()
	o := render(t, Options{Set: []string{"tls.secretName=pub", "adminTLS.secretName=adm"}})
	d := only(t, "Deployment", o.deployments)
	c := server(t, d)
	for name, want := range map[string]string{
		"TOKENSMITH_TLS_CERT": "/etc/tokensmith/tls/tls.crt", "TOKENSMITH_TLS_KEY": "/etc/tokensmith/tls/tls.key",
		"TOKENSMITH_ADMIN_TLS_CERT": "/etc/tokensmith/admin-tls/tls.crt", "TOKENSMITH_ADMIN_TLS_KEY": "/etc/tokensmith/admin-tls/tls.key",
	} {
		if e, _ := env(c, name); e.Value != want {
			t.Errorf("%s: got %q, want %q", name, e.Value, want)
		}
	}
	for vol, secret := range map[string]string{"tls": "pub", "admin-tls": "adm"} {
		if v := volume(t, d, vol); v.Secret == nil || v.Secret.SecretName != secret {
			t.Errorf("volume %s: got %+v, want Secret %s", vol, v.VolumeSource, secret)
		}
	}
	if got := c.ReadinessProbe.HTTPGet.Scheme; got != corev1.URISchemeHTTPS {
		t.Errorf("readiness probe scheme with TLS: got %q, want HTTPS", got)
	}
}

func TestConfigFileIsValuesConfig(t *testing.T) {
	t.Parallel()
	o := render(t, Options{Set: []string{"config.issuer=https://auth.example.com", "config.tokens.refresh_ttl=720h"}})
	cm := only(t, "ConfigMap", o.configMaps)
	var got map[string]any
	if err := yaml.Unmarshal([]byte(cm.Data["tokensmith.yaml"]), &got); err != nil {
		t.Fatal(err)
	}
	if got["issuer"] != "https://auth.example.com" || got["tokens"].(map[string]any)["refresh_ttl"] != "720h" {
		t.Errorf("config file: got %v", got)
	}
	d := only(t, "Deployment", o.deployments)
	c := server(t, d)
	path, _ := env(c, "TOKENSMITH_CONFIG")
	mounted := false
	for _, m := range c.VolumeMounts {
		if m.Name == "config" && m.MountPath+"/tokensmith.yaml" == path.Value {
			mounted = true
		}
	}
	if !mounted || volume(t, d, "config").ConfigMap == nil {
		t.Errorf("TOKENSMITH_CONFIG %q is not the mounted ConfigMap's file", path.Value)
	}
	if d.Spec.Template.Annotations["checksum/config"] == "" {
		t.Error("no checksum/config annotation: a changed configuration would not roll the pods")
	}
}

func TestMonitoringObjects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		set          []string
		wantReplicas string
	}{
		{"fixed replicas", []string{"replicaCount=3"}, "< 3"},
		{"autoscaled", []string{"autoscaling.enabled=true", "autoscaling.minReplicas=4"}, "< 4"},
		{"explicit", []string{"replicaCount=3", "prometheusRule.minReplicas=2"}, "< 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			set := append([]string{"storage.type=redis", "storage.redis.url=redis://r:6379", "serviceMonitor.enabled=true", "prometheusRule.enabled=true"}, tc.set...)
			o := render(t, Options{Set: set})
			sm := only(t, "ServiceMonitor", o.serviceMonitors)
			admin, public := o.services["tokensmith-admin"], o.services["tokensmith"]
			matches := func(labels map[string]string) bool {
				for k, v := range sm.Spec.Selector.MatchLabels {
					if labels[k] != v {
						return false
					}
				}
				return true
			}
			if !matches(admin.Labels) || matches(public.Labels) {
				t.Errorf("ServiceMonitor selects %v: want the admin Service only", sm.Spec.Selector.MatchLabels)
			}
			if got := sm.Spec.Endpoints; len(got) != 1 || got[0].Port != "admin" || got[0].Path != "/metrics" {
				t.Errorf("ServiceMonitor endpoints: got %+v, want port admin, /metrics", got)
			}
			rule := only(t, "PrometheusRule", o.rules)
			n := 0
			for _, g := range rule.Spec.Groups {
				for _, r := range g.Rules {
					n++
					expr := r.Expr.String()
					if !strings.Contains(expr, `namespace="tokensmith",job="tokensmith-admin"`) {
						t.Errorf("%s does not select this release's series: %s", r.Alert, expr)
					}
					if r.Alert == "TokensmithReplicasMissing" && !strings.HasSuffix(expr, tc.wantReplicas) {
						t.Errorf("%s: got %q, want it to end %q", r.Alert, expr, tc.wantReplicas)
					}
				}
			}
			if n < 8 {
				t.Errorf("got %d alerts, want at least 8", n)
			}
		})
	}
}

func TestOpenTelemetryVariables(t *testing.T) {
	t.Parallel()
	o := render(t, Options{Set: []string{"otel.enabled=true", "otel.endpoint=http://collector:4318", "otel.samplerArg=0.1",
		"otel.resourceAttributes.deployment\\.environment=prod"}})
	c := server(t, only(t, "Deployment", o.deployments))
	for name, want := range map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
		"OTEL_SERVICE_NAME": "tokensmith", "OTEL_TRACES_SAMPLER_ARG": "0.1",
		"OTEL_RESOURCE_ATTRIBUTES": "k8s.pod.name=$(K8S_POD_NAME),k8s.namespace.name=$(K8S_NAMESPACE_NAME),k8s.node.name=$(K8S_NODE_NAME),deployment.environment=prod",
	} {
		if e, _ := env(c, name); e.Value != want {
			t.Errorf("%s: got %q, want %q", name, e.Value, want)
		}
	}
	if envIndex(c, "K8S_POD_NAME") > envIndex(c, "OTEL_RESOURCE_ATTRIBUTES") {
		t.Error("K8S_POD_NAME comes after OTEL_RESOURCE_ATTRIBUTES, which refers to it")
	}
	o = render(t, Options{})
	for _, e := range server(t, only(t, "Deployment", o.deployments)).Env {
		if strings.HasPrefix(e.Name, "OTEL_") {
			t.Errorf("%s set with otel off", e.Name)
		}
	}
}
