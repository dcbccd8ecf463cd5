package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/tokensmith/tokensmith/duration"
	"gopkg.in/yaml.v3"
)

// EnvPrefix is the prefix of every environment override.
const EnvPrefix = "TOKENSMITH_"

// Default returns the configuration used when nothing is set.
func Default() Config {
	return Config{
		Listen:         ":8080",
		AdminListen:    "127.0.0.1:8081",
		DataDir:        "./data",
		LogLevel:       "info",
		LogFormat:      "text",
		TLSClientAuth:  ClientAuthOff,
		ReplicaTimeout: duration.Duration(15 * time.Second),
		StoreTimeout:   duration.Duration(500 * time.Millisecond),
		ClientCacheTTL: duration.Duration(time.Second),
		Keys:           Keys{Algorithms: []string{"RS256"}, PublishAhead: duration.Duration(10 * time.Minute)},
		Console: Console{
			Enabled:         true,
			IdleTimeout:     duration.Duration(30 * time.Minute),
			AbsoluteTimeout: duration.Duration(12 * time.Hour),
		},
		Tokens: Tokens{
			ClientCredentialsTTL: duration.Duration(3 * time.Hour),
			PasswordTTL:          duration.Duration(24 * time.Hour),
			RefreshTTL:           duration.Duration(14 * 24 * time.Hour),
			ExchangeTTL:          duration.Duration(15 * time.Minute),
			RefreshGrace:         duration.Duration(5 * time.Second),
			ReuseMinRemaining:    duration.Duration(5 * time.Minute),
			FailedLoginLimit:     5,
			DailyLimitTimezone:   "UTC",
		},
		Audit: Audit{Sink: AuditLog, Stream: "ts:audit", MaxLen: 1_000_000, Buffer: 10_000},
	}
}

// Load builds the configuration: defaults, then the YAML file at path (if path is not empty),
// then TOKENSMITH_* variables from environ, then Validate.
func Load(path string, environ []string) (Config, error) {
	c := Default()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return c, fmt.Errorf("config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		// An empty file decodes to io.EOF: it simply sets nothing.
		if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
			return c, fmt.Errorf("config: %s: %w", path, err)
		}
	}
	envMap := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			envMap[k] = v
		}
	}
	if err := env.ParseWithOptions(&c, env.Options{Prefix: EnvPrefix, Environment: envMap}); err != nil {
		return c, envError(err)
	}
	if v, ok := envMap[EnvPrefix+"PROFILES"]; ok {
		c.Profiles = c.Profiles.only(v)
	}
	if c.Storage == "" {
		c.Storage = "file:" + filepath.Join(c.DataDir, "tokensmith.db")
	}
	for i, a := range c.Keys.Algorithms {
		c.Keys.Algorithms[i] = strings.TrimSpace(a) // "RS256, ES256" in the environment
	}
	c.Issuer = strings.TrimRight(c.Issuer, "/")
	if c.Issuer == "" {
		if iss, err := DeriveIssuer(c.Listen, c.PublicTLS()); err == nil {
			c.Issuer, c.IssuerDerived = iss, true
		}
	}
	return c, c.Validate()
}

// DeriveIssuer is the URL of a public listener on listen: https when it serves TLS, and
// localhost when it listens on every address (":8080" gives http://localhost:8080, the documented
// default issuer).
func DeriveIssuer(listen string, tls bool) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil || port == "" {
		return "", fmt.Errorf("%q must be host:port or :port", listen)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	scheme := "http"
	if tls {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port), nil
}

// envError rewrites the env library's errors, which name Go fields, to name the variables.
func envError(err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return fmt.Errorf("config: environment: %w", err)
	}
	keys := envKeys(reflect.TypeFor[Config]())
	var errs []error
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			errs = append(errs, fmt.Errorf("%s%s: %v", EnvPrefix, keys[pe.Name], pe.Err))
			continue
		}
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

// envKeys maps struct field names to their env tags, through nested structs.
func envKeys(t reflect.Type) map[string]string {
	out := map[string]string{}
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Type.Kind() == reflect.Struct {
			maps.Copy(out, envKeys(f.Type))
		}
		if k := f.Tag.Get("env"); k != "" {
			out[f.Name] = strings.Split(k, ",")[0]
		}
	}
	return out
}
