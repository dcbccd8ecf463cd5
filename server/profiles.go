package server

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/tokensmith/tokensmith/grants"
	"github.com/tokensmith/tokensmith/profiles"
	"github.com/tokensmith/tokensmith/protocol"
)

// profile serves one route of a seed API profile: the HTTP of /oauth2/token (body limits,
// duplicate and UTF-8 checks, parameter lengths, caller address, headers, metrics) around the
// profile's translation, and the same grants.Handler behind it.
func (p *Public) profile(ep profiles.Endpoint) gin.HandlerFunc {
	return func(c *gin.Context) {
		p.issue(c, func(r *http.Request) (*grants.Request, error) { return profileRequest(r, ep.Route) },
			func(t *grants.Token) any { return ep.Route.Success(t, p.Now()) },
			func(pe *protocol.Error) (int, any) { return ep.Route.Failure(pe, p.Now()) })
	}
}

// profileRequest reads a profile's fields (a form or JSON body, or the query string of a GET)
// and lets the route translate them, within the limits of every token request.
func profileRequest(r *http.Request, route profiles.Route) (*grants.Request, error) {
	var fields map[string]string
	var err error
	if r.Method == http.MethodGet {
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
