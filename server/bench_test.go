package server_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/audit"
	"github.com/tokensmith/tokensmith/grants"
	"github.com/tokensmith/tokensmith/keys"
	"github.com/tokensmith/tokensmith/logging"
	"github.com/tokensmith/tokensmith/metrics"
	"github.com/tokensmith/tokensmith/registry"
	"github.com/tokensmith/tokensmith/server"
	"github.com/tokensmith/tokensmith/storage/embedded"
)

// Benchmarks of the HTTP side of a token request: parsing, and the whole handler of a reused
// token (everything but the network), so a regression on the reuse path shows in benchstat:
//
//	go test -run '^$' -bench . -benchmem -count 10 ./server/ > new.txt

func BenchmarkParseTokenRequest(b *testing.B) {
	tests := []struct {
		name, contentType, body, auth string
	}{
		{"form+basic", "application/x-www-form-urlencoded", "grant_type=client_credentials&scope=orders%3Aread",
			basic("5ana4c7hmpdk", "G46VBj0GJO1fdig04mdpa4UXT6qZ3C__NF7hcaZxOQI")},
		{"form+post", "application/x-www-form-urlencoded; charset=utf-8",
			"grant_type=client_credentials&client_id=5ana4c7hmpdk&client_secret=G46VBj0GJO1fdig04mdpa4UXT6qZ3C__NF7hcaZxOQI", ""},
		{"json+post", "application/json",
			`{"grant_type":"client_credentials","client_id":"5ana4c7hmpdk","client_secret":"G46VBj0GJO1fdig04mdpa4UXT6qZ3C__NF7hcaZxOQI"}`, ""},
	}
	for _, tc := range tests {
		b.Run(tc.name, func(b *testing.B) {
			req := httptest.NewRequest("POST", "/oauth2/token", nil)
			req.Header.Set("Content-Type", tc.contentType)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			body := strings.NewReader(tc.body)
			b.ReportAllocs()
			for b.Loop() {
				body.Reset(tc.body)
				req.Body = io.NopCloser(body)
				if _, err := server.ParseTokenRequest(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTokenEndpointReused runs the public handler (Gin, request id, access log and audit
// event into a discarded log, parsing, a cached client, admission on the embedded store,
// the JSON answer) for a token that is reused.
func BenchmarkTokenEndpointReused(b *testing.B) {
	ctx := context.Background()
	store, err := embedded.OpenMemory()
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	log := logging.New(io.Discard, "text", "info")
	km, _, err := keys.Open(ctx, store, keys.Options{}, log)
	if err != nil {
		b.Fatal(err)
	}
	ks := km.Set
	defer ks.Close()
	m := metrics.New()
	w := audit.NewWriter(audit.LogSink{Log: log}, audit.Options{})
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { w.Run(wctx); close(done) }()
	defer func() { stop(); <-done }()
	rec := audit.Tee(m, w)
	gh := grants.NewService(store, ks, grants.Policy{Issuer: "https://auth.example.com", ClientCredentialsTTL: 3 * time.Hour,
		ReuseMinRemaining: 5 * time.Minute, ClientCacheTTL: time.Minute, StoreTimeout: 500 * time.Millisecond},
		grants.WithLogger(log), grants.WithAuditor(rec), grants.WithStoreObserver(m.ObserveStore))
	v, err := registry.New(store, nil).CreateClient(ctx, registry.ClientInput{Reuse: ptr(true)})
	if err != nil {
		b.Fatal(err)
	}
	h := (&server.Public{Issuer: "https://auth.example.com", Grants: gh, Keys: ks, Store: store, Metrics: m, Log: log}).Handler()
	const body = "grant_type=client_credentials"
	auth := basic(v.ClientID, v.ClientSecret)
	call := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/oauth2/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", auth)
		rw := httptest.NewRecorder()
		h.ServeHTTP(rw, req)
		return rw
	}
	if rw := call(); rw.Code != http.StatusOK {
		b.Fatalf("%d %s", rw.Code, rw.Body)
	}
	b.ReportAllocs()
	for b.Loop() {
		if rw := call(); rw.Code != http.StatusOK {
			b.Fatalf("%d %s", rw.Code, rw.Body)
		}
	}
}
