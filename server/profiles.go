package server

import (
	"net/http"
	"time"

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
		start := time.Now()
		grant := "unknown"
		outcome := "ok"
		defer func() {
			p.Metrics.Requests.WithLabelValues(grant, outcome).Inc()
			p.Metrics.Duration.WithLabelValues(grant).Observe(time.Since(start).Seconds())
		}()
		req, err := profileRequest(c.Request, ep.Route)
		if err != nil {
			// Refused before it reached a grant: recorded here, as /oauth2/token does.
			p.Grants.Refused(c.Request.Context(), grants.EndpointToken, err)
		} else {
			req.Remote = remote(c)
			if p.Grants.Serves(req.GrantType) {
				grant = req.GrantType
			}
			var tok *grants.Token
			if tok, err = p.Grants.Token(c.Request.Context(), req); err == nil {
				noStore(c)
				rateLimitHeaders(c, tok.RateLimit)
				c.JSON(http.StatusOK, ep.Route.Success(tok, p.Now()))
				return
			}
		}
		outcome = protocol.As(err).Code
		writeErrorAs(c, p.Log, err, func(pe *protocol.Error) (int, any) { return ep.Route.Failure(pe, p.Now()) })
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
