package chart

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// setup is one way to install the chart: the defaults, or an example values file.
type setup struct {
	name string
	opts Options
}

// setups are the default values and every file in examples/: each must render, decode
// strictly and keep the security properties below.
func setups(t *testing.T) []setup {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(Dir(), "examples", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 6 {
		t.Fatalf("got %d example values files, want at least 6", len(files))
	}
	out := []setup{{name: "default"}}
	for _, f := range files {
		out = append(out, setup{name: "examples/" + filepath.Base(f), opts: Options{ValueFiles: []string{f}}})
	}
	return out
}

// render renders and decodes, failing the test on any error.
func render(t *testing.T, o Options) *objects {
	t.Helper()
	docs, err := Render(o)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	objs, err := decode(docs)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return objs
}

// only returns the single object of a kind, failing unless there is exactly one.
func only[T any](t *testing.T, kind string, m map[string]*T) *T {
	t.Helper()
	if len(m) != 1 {
		t.Fatalf("got %d %s objects, want 1", len(m), kind)
	}
	for _, v := range m {
		return v
	}
	return nil
}

// server is the Deployment's Tokensmith container.
func server(t *testing.T, d *appsv1.Deployment) corev1.Container {
	t.Helper()
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == "tokensmith" {
			return c
		}
	}
	t.Fatal("no container named tokensmith")
	return corev1.Container{}
}

func env(c corev1.Container, name string) (corev1.EnvVar, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e, true
		}
	}
	return corev1.EnvVar{}, false
}

func TestEverySetupRendersAndDecodesStrictly(t *testing.T) {
	t.Parallel()
	for _, s := range setups(t) {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			o := render(t, s.opts)
			only(t, "Deployment", o.deployments)
			only(t, "ConfigMap", o.configMaps)
			if got, want := len(o.services), 2; got != want {
				t.Errorf("got %d Services, want %d (public and admin)", got, want)
			}
		})
	}
}

func TestEverySetupIsLockedDown(t *testing.T) {
	t.Parallel()
	for _, s := range setups(t) {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			o := render(t, s.opts)
			d := only(t, "Deployment", o.deployments)
			pod := d.Spec.Template.Spec
			c := server(t, d)
			sc := c.SecurityContext
			if sc == nil {
				t.Fatal("container has no securityContext")
			}
			nonRoot := sc.RunAsNonRoot
			if nonRoot == nil && pod.SecurityContext != nil {
				nonRoot = pod.SecurityContext.RunAsNonRoot
			}
			if nonRoot == nil || !*nonRoot {
				t.Error("runAsNonRoot: got unset or false, want true")
			}
			if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
				t.Error("runAsUser: got 0, want the image's non-root user")
			}
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Error("readOnlyRootFilesystem: got unset or false, want true")
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Error("allowPrivilegeEscalation: got unset or true, want false")
			}
			if sc.Privileged != nil && *sc.Privileged {
				t.Error("privileged: got true")
			}
			if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
				t.Errorf("capabilities: got %+v, want drop [ALL] and nothing added", sc.Capabilities)
			}
			if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
				t.Error("automountServiceAccountToken: got unset or true, want false (the server never calls the API)")
			}

			for _, p := range []struct {
				name  string
				probe *corev1.Probe
				path  string
			}{
				{"liveness", c.LivenessProbe, "/healthz"},
				{"readiness", c.ReadinessProbe, "/readyz"},
				{"startup", c.StartupProbe, "/healthz"},
			} {
				if p.probe == nil || p.probe.HTTPGet == nil {
					t.Errorf("%s probe: got none, want an HTTP GET of %s", p.name, p.path)
					continue
				}
				if got := p.probe.HTTPGet.Path; got != p.path {
					t.Errorf("%s probe path: got %q, want %q", p.name, got, p.path)
				}
				if got := p.probe.HTTPGet.Port.String(); got != "http" {
					t.Errorf("%s probe port: got %q, want the public listener (http)", p.name, got)
				}
			}

			// The only writable places are volumes; the data directory is one of them.
			mounts := map[string]corev1.VolumeMount{}
			for _, m := range c.VolumeMounts {
				mounts[m.MountPath] = m
			}
			data, ok := mounts["/var/lib/tokensmith"]
			if !ok {
				t.Fatal("no volume at the data directory /var/lib/tokensmith")
			}
			if data.ReadOnly {
				t.Error("the data directory is mounted read-only; the server writes there")
			}
			for _, path := range []string{"/etc/tokensmith/tls", "/etc/tokensmith/admin-tls"} {
				if m, ok := mounts[path]; ok && (m.SubPath != "" || !m.ReadOnly) {
					t.Errorf("%s: got subPath %q readOnly %v, want the whole Secret read-only (a subPath never sees a renewed certificate)", path, m.SubPath, m.ReadOnly)
				}
			}

			admin := o.services["tokensmith-admin"]
			if admin == nil {
				t.Fatal("no Service tokensmith-admin")
			}
			if got := admin.Spec.Type; got != corev1.ServiceTypeClusterIP {
				t.Errorf("admin Service type: got %q, want ClusterIP", got)
			}
			if got := admin.Spec.Ports; len(got) != 1 || got[0].TargetPort.String() != "admin" {
				t.Errorf("admin Service ports: got %+v, want one, to the admin port", got)
			}
			public := o.services["tokensmith"]
			if public == nil {
				t.Fatal("no Service tokensmith")
			}
			for _, p := range public.Spec.Ports {
				if p.TargetPort.String() == "admin" || p.TargetPort.IntValue() == 8081 {
					t.Errorf("public Service exposes the admin listener: %+v", p)
				}
			}
			for name, ing := range o.ingresses {
				for _, r := range ing.Spec.Rules {
					for _, p := range r.HTTP.Paths {
						if p.Backend.Service.Name != "tokensmith" {
							t.Errorf("Ingress %s routes to %q, want only the public Service", name, p.Backend.Service.Name)
						}
					}
				}
			}

			tok, ok := env(c, "TOKENSMITH_ADMIN_TOKEN")
			if !ok || tok.Value != "" || tok.ValueFrom == nil || tok.ValueFrom.SecretKeyRef == nil {
				t.Errorf("TOKENSMITH_ADMIN_TOKEN: got %+v, want it from a Secret", tok)
			}
			for _, e := range c.Env {
				if strings.Contains(e.Value, "@") && !strings.Contains(e.Value, "$(TOKENSMITH_REDIS_PASSWORD)@") {
					t.Errorf("%s carries credentials in plain text: %q", e.Name, e.Value)
				}
			}
		})
	}
}

func TestReplicasStoreAndDisruptionBudget(t *testing.T) {
	t.Parallel()
	for _, s := range setups(t) {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			o := render(t, s.opts)
			d := only(t, "Deployment", o.deployments)
			c := server(t, d)
			storage, _ := env(c, "TOKENSMITH_STORAGE")
			redis := storage.ValueFrom != nil || strings.HasPrefix(storage.Value, "redis")
			many := len(o.hpas) > 0 || d.Spec.Replicas != nil && *d.Spec.Replicas > 1
			if many && !redis {
				t.Errorf("more than one replica on storage %q: want Redis", storage.Value)
			}
			if got, want := len(o.pdbs), map[bool]int{true: 1, false: 0}[many]; got != want {
				t.Errorf("got %d PodDisruptionBudgets with more than one replica %v, want %d", got, many, want)
			}
			for _, pdb := range o.pdbs {
				if got, want := pdb.Spec.Selector.MatchLabels, d.Spec.Selector.MatchLabels; !equalMaps(got, want) {
					t.Errorf("PDB selector: got %v, want the Deployment's %v", got, want)
				}
			}
			if len(o.hpas) > 0 && d.Spec.Replicas != nil {
				t.Error("with a HorizontalPodAutoscaler the Deployment must leave replicas to it")
			}
			wantStrategy := appsv1.RecreateDeploymentStrategyType
			if redis {
				wantStrategy = appsv1.RollingUpdateDeploymentStrategyType
			}
			if got := d.Spec.Strategy.Type; got != wantStrategy {
				t.Errorf("strategy: got %s, want %s (the embedded store's file has one owner)", got, wantStrategy)
			}
			data := volume(t, d, "data")
			if redis && data.EmptyDir == nil {
				t.Errorf("on Redis the data volume is %+v, want an emptyDir", data.VolumeSource)
			}
			if !redis && data.PersistentVolumeClaim == nil && data.EmptyDir == nil {
				t.Errorf("embedded store's data volume: got %+v, want a claim or an emptyDir", data.VolumeSource)
			}
		})
	}
}

func volume(t *testing.T, d *appsv1.Deployment, name string) corev1.Volume {
	t.Helper()
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("no volume %q", name)
	return corev1.Volume{}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
