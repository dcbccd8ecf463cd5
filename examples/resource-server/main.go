// Command resource-server is a small orders API protected by package verify: the resource
// server half of a Tokensmith set-up, runnable as it is (see "Resource servers" in the
// README).
//
//	GET  /orders                 orders:read
//	POST /orders                 orders:write
//	POST /refunds                orders:write, and asks introspection: a revoked token is refused at once
//	GET  /me                     any token of this API, or a personal token (tsp_…), through introspection
//	GET  /evotor/orders          orders:read; the raw token in X-Authorization or ?access_token= (Evotor)
//	GET  /tokens-make/orders     orders:read; refusals in tokens.make's error envelope
//	GET  /healthz                no token
//
// Settings are flags, each defaulting to an environment variable:
//
//	-listen         API_LISTEN          address to listen on (127.0.0.1:9090)
//	-issuer         TOKENSMITH_ISSUER   Tokensmith's issuer URL (http://localhost:8080)
//	-audience       API_AUDIENCE        the aud this API answers to (http://localhost:9090)
//	-client-id      API_CLIENT_ID       the API's own client, for introspection
//	-client-secret  API_CLIENT_SECRET   (create it with: tokensmith client create --resource-server)
//	-introspection-cache API_INTROSPECTION_CACHE  how long an introspection answer is reused (1s)
//
// Without a client id the introspecting routes (/refunds, /me) are not served.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tokensmith/tokensmith/verify"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func run() error {
	listen := flag.String("listen", env("API_LISTEN", "127.0.0.1:9090"), "address to listen on")
	issuer := flag.String("issuer", env("TOKENSMITH_ISSUER", "http://localhost:8080"), "Tokensmith's issuer URL")
	audience := flag.String("audience", env("API_AUDIENCE", "http://localhost:9090"), "the aud this API answers to")
	clientID := flag.String("client-id", env("API_CLIENT_ID", ""), "the API's client id, for introspection")
	clientSecret := flag.String("client-secret", env("API_CLIENT_SECRET", ""), "the API's client secret")
	cache := flag.String("introspection-cache", env("API_INTROSPECTION_CACHE", "1s"), "how long an introspection answer is reused")
	flag.Parse()
	ttl, err := time.ParseDuration(*cache)
	if err != nil {
		return fmt.Errorf("-introspection-cache: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	v, err := verify.New(verify.Config{
		Issuer:        *issuer,
		Audience:      []string{*audience},
		Realm:         "orders",
		Logger:        log,
		Introspection: verify.IntrospectionConfig{ClientID: *clientID, ClientSecret: *clientSecret, CacheTTL: ttl},
	})
	if err != nil {
		return err
	}
	// Not fatal: verify fetches the keys with the first token anyway, so the API may start
	// before Tokensmith does.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if err := v.Refresh(ctx); err != nil {
		log.Warn("signing keys not fetched yet", "error", err)
	}
	cancel()

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]string{"status": "ok"}) })
	mux.Handle("GET /orders", v.Middleware(verify.Scopes("orders:read"))(http.HandlerFunc(listOrders)))
	mux.Handle("POST /orders", v.Middleware(verify.Scopes("orders:write"))(http.HandlerFunc(createOrder)))
	mux.Handle("GET /evotor/orders", v.Middleware(verify.Scopes("orders:read"),
		verify.TokenHeader(verify.EvotorHeader), verify.TokenQuery(verify.AccessTokenQuery))(http.HandlerFunc(listOrders)))
	mux.Handle("GET /tokens-make/orders", v.Middleware(verify.Scopes("orders:read"), verify.RenderError(tokensMakeError))(http.HandlerFunc(listOrders)))
	if *clientID != "" {
		mux.Handle("POST /refunds", v.Middleware(verify.Scopes("orders:write"), verify.Introspect())(http.HandlerFunc(refund)))
		mux.Handle("GET /me", v.Middleware(verify.Introspect(), verify.PersonalTokens())(http.HandlerFunc(me)))
	} else {
		log.Warn("no -client-id: /refunds and /me, which ask introspection, are not served")
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: accessLog(log, mux), ReadHeaderTimeout: 10 * time.Second}
	log.Info("resource server listening", "url", "http://"+ln.Addr().String(), "issuer", *issuer, "audience", *audience)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-stop:
	}
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func listOrders(w http.ResponseWriter, r *http.Request) {
	c, _ := verify.FromContext(r.Context())
	writeJSON(w, 200, map[string]any{"client_id": c.ClientID, "sub": c.Subject, "orders": []string{"A-1001", "A-1002"}})
}

func createOrder(w http.ResponseWriter, r *http.Request) {
	c, _ := verify.FromContext(r.Context())
	writeJSON(w, 201, map[string]any{"client_id": c.ClientID, "order": "A-1003"})
}

func refund(w http.ResponseWriter, r *http.Request) {
	c, _ := verify.FromContext(r.Context())
	writeJSON(w, 201, map[string]any{"client_id": c.ClientID, "refund": "R-1", "checked_by_introspection": c.Introspected})
}

func me(w http.ResponseWriter, r *http.Request) {
	c, _ := verify.FromContext(r.Context())
	writeJSON(w, 200, map[string]any{"sub": c.Subject, "username": c.Username, "client_id": c.ClientID,
		"scope": c.Scopes, "personal_token": c.Personal})
}

// tokensMakeError renders a refusal in tokens.make's envelope (seed 001): its clients look for
// ApiInvalidTokenError to know they must refresh. The status and WWW-Authenticate stay RFC
// 6750's.
func tokensMakeError(_ *http.Request, e *verify.Error) (string, []byte) {
	code, message := "ApiInvalidTokenError", "Invalid Token"
	switch {
	case errors.Is(e, verify.ErrInsufficientScope):
		code, message = "ApiAccessDeniedError", "Access Denied"
	case errors.Is(e, verify.ErrUnavailable):
		code, message = "ApiUnavailableError", "Try Again Later"
	}
	type apiError struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	body, _ := json.Marshal(struct {
		Success bool     `json:"success"`
		Error   apiError `json:"error"`
	}{false, apiError{code, message}})
	return "application/json", append(body, '\n')
}

// statusRecorder remembers the status for the access log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) { s.status = code; s.ResponseWriter.WriteHeader(code) }

// accessLog logs one line per request, without the token or the query (which may hold one).
func accessLog(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: 200}
		start := time.Now()
		next.ServeHTTP(rec, r)
		log.Info("http", "method", r.Method, "path", r.URL.Path, "status", rec.status, "duration", time.Since(start).Round(time.Microsecond))
	})
}
