package server

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/tokensmith/tokensmith/grants"
	"github.com/tokensmith/tokensmith/profiles"
	"github.com/tokensmith/tokensmith/protocol"
)

// reservedPaths are served by the public listener itself; no profile may take them.
var reservedPaths = []string{"/oauth2/", "/.well-known/", "/healthz", "/readyz", "/console/"}

// ProfileEndpoints resolves the seed API profiles turned on (name → route name → path, as
// config.Profiles.Enabled gives them) into the routes to serve, refusing unknown names and
// routes, malformed or duplicate paths, and paths the public listener serves itself.
func ProfileEndpoints(enabled map[string]map[string]string) ([]profiles.Endpoint, error) {
	eps, err := profiles.Endpoints(enabled)
	if err != nil {
		return nil, err
	}
	for _, ep := range eps {
		if slices.ContainsFunc(reservedPaths, func(r string) bool {
			r = strings.TrimSuffix(r, "/")
			return ep.Path == r || strings.HasPrefix(ep.Path, r+"/")
		}) {
			return nil, fmt.Errorf("%s: %s is served by Tokensmith itself", ep.Profile, ep.Path)
		}
	}
	return eps, nil
}

// profile serves one route of a seed API profile: the HTTP of /oauth2/token (body limits,
// duplicate and UTF-8 checks, parameter lengths, caller address, headers, metrics) around the
// profile's translation, and the same grants.Service behind it.
func (p *Public) profile(ep profiles.Endpoint) gin.HandlerFunc {
	return func(c *gin.Context) {
		p.issue(c, func(r *http.Request) (*grants.Request, error) { return profileRequest(r, ep.Route) },
			func(t *grants.Token) any { return ep.Route.Success(t, p.Now()) },
			func(pe *protocol.Error) (int, any) { return ep.Route.Failure(pe, p.Now()) })
	}
}

// profileRequest reads a profile's fields (a form or JSON body, or the query string of a GET,
// and of a HEAD, which a GET route answers too) and lets the route translate them, within the
// limits of every token request.
func profileRequest(r *http.Request, route profiles.Route) (*grants.Request, error) {
	var fields map[string]string
	var err error
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		fields, err = formParams([]byte(r.URL.RawQuery))
	} else {
		fields, err = readParams(r)
	}
	if err != nil {
		return nil, err
	}
	for k, v := range fields {
		if len(v) > DefaultMaxParamLen {
			return nil, badRequest("parameter %q is longer than %d bytes", printable(k), DefaultMaxParamLen)
		}
	}
	req, err := route.Request(fields)
	if err != nil {
		return nil, err
	}
	return req, checkLengths(req)
}

// checkLengths applies MaxParamLen to a translated request, whatever the seed API called its
// fields.
func checkLengths(req *grants.Request) error {
	named := map[string]string{
		protocol.ParamGrantType: req.GrantType, protocol.ParamClientID: req.ClientID, protocol.ParamClientSecret: req.ClientSecret,
	}
	for k, v := range req.Params {
		named[k] = v
	}
	for k, v := range named {
		if limit, ok := MaxParamLen[k]; ok && len(v) > limit {
			return badRequest("parameter %q is longer than %d bytes", printable(k), limit)
		}
	}
	return nil
}
