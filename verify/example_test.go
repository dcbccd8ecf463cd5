package verify_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/tokensmith/tokensmith/verify"
)

// A net/http API: GET /orders needs orders:read. The claims of the verified token are in the
// request context. A request without a token gets RFC 6750's bare challenge.
func Example() {
	v, err := verify.New(verify.Config{
		Issuer:   "https://auth.example.com",
		Audience: []string{"https://api.example.com"},
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /orders", v.Middleware(verify.Scopes("orders:read"))(http.HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) {
			claims, _ := verify.FromContext(r.Context())
			fmt.Fprintf(w, "orders of %s\n", claims.ClientID)
		})))
	api := httptest.NewServer(mux)
	defer api.Close()

	resp, err := http.Get(api.URL + "/orders")
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	// Output: 401 Bearer realm="https://api.example.com"
}

// An API with its own error envelope (tokens.make's) renders the body of every refusal; the
// status and WWW-Authenticate stay RFC 6750's. Evotor's clients send the raw token in
// X-Authorization.
func ExampleConfig_errorBody() {
	v, err := verify.New(verify.Config{
		Issuer:   "https://auth.example.com",
		Audience: []string{"https://api.example.com"},
		Realm:    "api",
		ErrorBody: func(r *http.Request, e *verify.Error) (string, []byte) {
			return "application/json", []byte(`{"success":false,"error":{"code":"ApiInvalidTokenError","message":"Invalid Token"}}`)
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	api := httptest.NewServer(v.Middleware(verify.TokenHeader(verify.EvotorHeader))(http.NotFoundHandler()))
	defer api.Close()

	req, _ := http.NewRequest("GET", api.URL, nil)
	req.Header.Set("X-Authorization", "not-a-jwt")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode)
	fmt.Println(resp.Header.Get("WWW-Authenticate"))
	fmt.Println(string(body))
	// Output:
	// 401
	// Bearer realm="api", error="invalid_token", error_description="the token is not a well-formed JWT"
	// {"success":false,"error":{"code":"ApiInvalidTokenError","message":"Invalid Token"}}
}
