// Command resource-server is a small orders API protected by package verify: the resource
// server half of a Tokensmith set-up, runnable as it is (see docs/resource-servers.md).
//
//	GET  /orders                 orders:read
//	POST /orders                 orders:write
//	POST /refunds                orders:write, and asks introspection: a revoked token is refused at once
//	GET  /me                     any token of this API, or a personal token (tsp_…), through introspection
//	GET  /evotor/orders          orders:read; the raw token in X-Authorization or ?access_token= (Evotor)
//	GET  /tokens-make/orders     orders:read; refusals in tokens.make's error envelope
//	GET  /bound/orders           orders:read, and only a token bound to the caller's key: a DPoP
//	                             token with its proof (or a certificate-bound one), never a bearer token
//	GET  /healthz                no token
//
// Settings are flags, each defaulting to an environment variable (API_LISTEN, TOKENSMITH_ISSUER,
// API_AUDIENCE, API_CLIENT_ID, API_CLIENT_SECRET, API_INTROSPECTION_CACHE, API_CA_FILE,
// API_TLS_CERT, API_TLS_KEY, API_TLS_CLIENT_CA): resource-server -h lists them with their
// defaults. Without a client id the introspecting routes (/refunds, /me) are not served. With
// -tls-cert and -tls-key it serves HTTPS; -tls-client-ca then asks callers for a client
// certificate from those CAs, without requiring one, which certificate-bound tokens (RFC 8705)
// need: over plain HTTP they are refused on every route. Every refusal is JSON with error and
// error_description (RFC 6750 §3 for a token refused), except on /tokens-make/orders.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/tokensmith/tokensmith/tlscert"
	"github.com/tokensmith/tokensmith/verify"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// settings are the example's settings.
type settings struct {
	listen, issuer, audience, clientID, clientSecret, caFile string
	introspectionCache                                       time.Duration
	tlsCert, tlsKey, tlsClientCA                             string
}

// parseSettings reads the flags in args. Each defaults to its environment variable (looked up
// with getenv), then to a built-in value; -h prints them all to out and returns flag.ErrHelp.
func parseSettings(args []string, getenv func(string) (string, bool), out io.Writer) (*settings, error) {
	var s settings
	var cache string
	fs := flag.NewFlagSet("resource-server", flag.ContinueOnError)
	fs.SetOutput(out)
	flags := []struct {
		dst                  *string
		name, env, def, help string
	}{
		{&s.listen, "listen", "API_LISTEN", "127.0.0.1:9090", "address to listen on"},
		{&s.issuer, "issuer", "TOKENSMITH_ISSUER", "http://localhost:8080", "Tokensmith's issuer URL"},
		{&s.audience, "audience", "API_AUDIENCE", "http://localhost:9090", "the aud this API answers to"},
		{&s.clientID, "client-id", "API_CLIENT_ID", "", "the API's own client, for introspection (none: /refunds and /me are not served)"},
		{&s.clientSecret, "client-secret", "API_CLIENT_SECRET", "", "its secret (create the client with: tokensmith client create --resource-server)"},
		{&cache, "introspection-cache", "API_INTROSPECTION_CACHE", "1s", "how long an introspection answer is reused"},
		{&s.caFile, "ca-file", "API_CA_FILE", "", "PEM file of CA certificates to trust for Tokensmith beside the system's (a dev-TLS or private-CA Tokensmith)"},
		{&s.tlsCert, "tls-cert", "API_TLS_CERT", "", "PEM certificate (chain) to serve HTTPS with instead of HTTP; needs -tls-key"},
		{&s.tlsKey, "tls-key", "API_TLS_KEY", "", "PEM private key of -tls-cert"},
		{&s.tlsClientCA, "tls-client-ca", "API_TLS_CLIENT_CA", "", "PEM CA certificates: over HTTPS, ask callers for a client certificate (optional) from these CAs, for certificate-bound tokens"},
	}
	for _, f := range flags {
		def := f.def
		if v, ok := getenv(f.env); ok {
			def = v
		}
		fs.StringVar(f.dst, f.name, def, f.help)
	}
	// The flag package's own listing would show what the environment set, the client secret
	// included: this one shows the variables and the built-in defaults.
	fs.Usage = func() {
		fmt.Fprint(out, "Usage: resource-server [flags]\n\nAn orders API that accepts Tokensmith's tokens. Each flag defaults to its\n"+
			"environment variable, then to the default shown.\n\n")
		w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "  FLAG\tVARIABLE\tDEFAULT\tMEANING")
		for _, f := range flags {
			def := f.def
			if def == "" {
				def = "(none)"
			}
			fmt.Fprintf(w, "  -%s\t%s\t%s\t%s\n", f.name, f.env, def, f.help)
		}
		_ = w.Flush()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (settings are flags: -h lists them)", fs.Arg(0))
	}
	var err error
	if s.introspectionCache, err = time.ParseDuration(cache); err != nil {
		return nil, fmt.Errorf("-introspection-cache (API_INTROSPECTION_CACHE): %w", err)
	}
	if (s.tlsCert == "") != (s.tlsKey == "") {
		return nil, errors.New("-tls-cert (API_TLS_CERT) and -tls-key (API_TLS_KEY) go together: give both to serve HTTPS, or neither")
	}
	// Over plain HTTP the setting would do nothing, and a certificate-bound token would still be
	// refused: say so at start rather than at the first such token.
	if s.tlsClientCA != "" && s.tlsCert == "" {
		return nil, errors.New("-tls-client-ca (API_TLS_CLIENT_CA) needs HTTPS: give -tls-cert (API_TLS_CERT) and -tls-key (API_TLS_KEY) too")
	}
	return &s, nil
}

// httpClient is the client that reaches Tokensmith: the default one, or one that also
// trusts the CA certificates in caFile.
func httpClient(caFile string) (*http.Client, error) {
	if caFile == "" {
		return nil, nil // verify's own
	}
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("-ca-file (API_CA_FILE): %w", err)
	}
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("-ca-file (API_CA_FILE): %s holds no PEM certificate", caFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr, Timeout: verify.DefaultHTTPTimeout}, nil
}

// serverTLS is the HTTPS configuration of s, or nil for plain HTTP. It is Tokensmith's own:
// TLS 1.2 at least, and only the TLS 1.2 suites its listeners accept; the certificate is read
// again when its files change, so a renewal needs no restart. The client CAs are read once.
func serverTLS(s *settings, log *slog.Logger) (*tls.Config, error) {
	if s.tlsCert == "" {
		return nil, nil
	}
	files, err := tlscert.Load(s.tlsCert, s.tlsKey, log)
	if err != nil {
		return nil, fmt.Errorf("-tls-cert, -tls-key (API_TLS_CERT, API_TLS_KEY): %w", err)
	}
	cfg := tlscert.Config(files)
	if s.tlsClientCA != "" {
		cas, err := tlscert.LoadClientCAs(s.tlsClientCA, log)
		if err != nil {
			return nil, fmt.Errorf("-tls-client-ca (API_TLS_CLIENT_CA): %w", err)
		}
		cfg.ClientCAs = cas.Pool()
		// Requested, not required: bearer and DPoP callers have no certificate and keep working;
		// one that is sent must chain to these CAs, and verify/ checks a certificate-bound token
		// against it.
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return cfg, nil
}

func run() error {
	s, err := parseSettings(os.Args[1:], os.LookupEnv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	client, err := httpClient(s.caFile)
	if err != nil {
		return err
	}
	tlsConfig, err := serverTLS(s, log)
	if err != nil {
		return err
	}
	v, err := verify.New(verify.Config{
		Issuer:        s.issuer,
		Audience:      []string{s.audience},
		Realm:         "orders",
		Logger:        log,
		HTTPClient:    client,
		ErrorBody:     refusal,
		Introspection: verify.IntrospectionConfig{ClientID: s.clientID, ClientSecret: s.clientSecret, CacheTTL: s.introspectionCache},
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
	if s.clientID == "" {
		log.Warn("no -client-id: /refunds and /me, which ask introspection, are not served")
	}

	ln, err := net.Listen("tcp", s.listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: accessLog(log, routes(v, s.clientID != "")), ReadHeaderTimeout: 10 * time.Second, TLSConfig: tlsConfig}
	scheme := "http"
	if tlsConfig != nil {
		scheme = "https"
	}
	log.Info("resource server listening", "url", scheme+"://"+ln.Addr().String(), "issuer", s.issuer, "audience", s.audience,
		"client_certificates", s.tlsClientCA != "")
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	served := make(chan error, 1)
	go func() {
		if tlsConfig == nil {
			served <- srv.Serve(ln)
			return
		}
		served <- srv.ServeTLS(ln, "", "")
	}()
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

// routes are the API's routes; introspect serves those that ask introspection, which need
// the API's own client.
func routes(v *verify.Verifier, introspect bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]string{"status": "ok"}) })
	mux.Handle("GET /orders", v.Middleware(verify.Scopes("orders:read"))(http.HandlerFunc(listOrders)))
	mux.Handle("POST /orders", v.Middleware(verify.Scopes("orders:write"))(http.HandlerFunc(createOrder)))
	mux.Handle("GET /evotor/orders", v.Middleware(verify.Scopes("orders:read"),
		verify.TokenHeader(verify.EvotorHeader), verify.TokenQuery(verify.AccessTokenQuery))(http.HandlerFunc(listOrders)))
	mux.Handle("GET /tokens-make/orders", v.Middleware(verify.Scopes("orders:read"), verify.RenderError(tokensMakeError))(http.HandlerFunc(listOrders)))
	mux.Handle("GET /bound/orders", v.Middleware(verify.Scopes("orders:read"), verify.RequireBinding())(http.HandlerFunc(listOrders)))
	if introspect {
		mux.Handle("POST /refunds", v.Middleware(verify.Scopes("orders:write"), verify.Introspect())(http.HandlerFunc(refund)))
		mux.Handle("GET /me", v.Middleware(verify.Introspect(), verify.PersonalTokens())(http.HandlerFunc(me)))
	}
	return jsonErrors(mux)
}

// errorBody is the body of every refusal: RFC 6750 §3's error and error_description.
type errorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// refusal renders a token refused by package verify (Config.ErrorBody); its status and
// WWW-Authenticate stay verify's. A request without a token and a 503 have no RFC 6750 code,
// and the challenge rightly names none, but the body still says what happened: unauthorized,
// and temporarily_unavailable as Tokensmith itself says it.
func refusal(_ *http.Request, e *verify.Error) (string, []byte) {
	code := e.Code
	switch {
	case errors.Is(e, verify.ErrUnavailable):
		code = "temporarily_unavailable"
	case code == "":
		code = "unauthorized"
	}
	body, _ := json.Marshal(errorBody{code, e.Description})
	return "application/json", append(body, '\n')
}

// jsonErrors answers what mux itself refuses (no such path, a method the path does not take)
// as JSON too, in place of ServeMux's plain text, keeping its status and Allow header.
func jsonErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		refused := &statusOnly{header: w.Header()}
		h.ServeHTTP(refused, r)
		if refused.status == http.StatusMethodNotAllowed {
			writeJSON(w, refused.status, errorBody{"method_not_allowed", "method " + r.Method + " is not allowed here"})
			return
		}
		writeJSON(w, http.StatusNotFound, errorBody{"not_found", "no such endpoint"})
	})
}

// statusOnly keeps the status and headers a handler answers and drops its body.
type statusOnly struct {
	header http.Header
	status int
}

func (s *statusOnly) Header() http.Header         { return s.header }
func (s *statusOnly) WriteHeader(code int)        { s.status = code }
func (s *statusOnly) Write(p []byte) (int, error) { return len(p), nil }

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
