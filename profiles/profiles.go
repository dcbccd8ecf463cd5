// Package profiles serves the token APIs of the seed integrations (ATOL Online, tokens.make,
// Rahmet Pay) in their own wire formats, so their integrators can move to Tokensmith without
// changing a line. A profile only translates: its routes read the seed API's fields into a
// grants.Request and render the grants.Token or protocol.Error that comes back in the seed
// API's envelope. Every rule (client authentication, grants, reuse, limits, backoff) is the one
// /oauth2/token applies, through the same grants.Service and store. The HTTP side (reading the
// body, headers, writing JSON) is server's; a profile is data and small functions.
//
// A profile is one file holding its Profile value, and one entry in the list of all.
package profiles

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/tokensmith/tokensmith/grants"
	"github.com/tokensmith/tokensmith/protocol"
)

// Profile is one seed API.
type Profile struct {
	// Name turns the profile on in configuration (TOKENSMITH_PROFILES, YAML profiles).
	Name string
	// Seed names the API the profile speaks, for the start-up log.
	Seed   string
	Routes []Route
}

// Route is one endpoint of a profile.
type Route struct {
	// Name picks the route in configuration: profiles.<profile>.paths.<route>.
	Name string
	// Path is where it is served unless configured otherwise.
	Path string
	// Methods are the HTTP methods it answers; POST when empty. A GET reads the query string.
	Methods []string
	// Request reads the seed API's fields (form or JSON body, or the query string) into a
	// token request; a protocol.Error when a field is missing or wrong.
	Request func(f Fields) (*grants.Request, error)
	// Success renders a token answered at now.
	Success func(t *grants.Token, now time.Time) any
	// Failure renders a refusal at now, with its HTTP status.
	Failure func(e *protocol.Error, now time.Time) (status int, body any)
}

// HTTPMethods are the methods r answers.
func (r Route) HTTPMethods() []string {
	if len(r.Methods) == 0 {
		return []string{"POST"}
	}
	return r.Methods
}

// Fields are the parameters of a request, by name; empty values are absent.
type Fields map[string]string

// take removes and returns one field.
func (f Fields) take(name string) string {
	v := f[name]
	delete(f, name)
	return v
}

// all are the known profiles by name.
var all = byName(atol, rahmet, tokensMake)

// byName indexes profiles by name. Two profiles of one name would make configuration
// ambiguous: that is a mistake in this package, refused when the program starts.
func byName(ps ...Profile) map[string]Profile {
	m := make(map[string]Profile, len(ps))
	for _, p := range ps {
		if _, dup := m[p.Name]; dup {
			panic("profiles: two profiles are named " + p.Name)
		}
		m[p.Name] = p
	}
	return m
}

// All lists the known profiles, ordered by name.
func All() []Profile {
	out := make([]Profile, 0, len(all))
	for _, name := range Names() {
		out = append(out, all[name])
	}
	return out
}

// Names lists the known profiles.
func Names() []string { return slices.Sorted(maps.Keys(all)) }

// Endpoint is a route of a profile that is turned on, at the path it is served on.
type Endpoint struct {
	Profile string
	Seed    string
	Path    string
	Route   Route
}

// Endpoints resolves the configured profiles (name → route name → path; an empty or missing
// path keeps the route's default) into the endpoints to serve, ordered by profile and route.
// It reports unknown profiles and routes, malformed paths and paths served twice; paths
// reserved by the public listener are the caller's to check.
func Endpoints(enabled map[string]map[string]string) ([]Endpoint, error) {
	var out []Endpoint
	var errs []string
	seen := map[string]string{}
	names := slices.Sorted(maps.Keys(enabled))
	for _, name := range names {
		p, ok := all[name]
		if !ok {
			errs = append(errs, fmt.Sprintf("unknown profile %q (known: %s)", name, strings.Join(Names(), ", ")))
			continue
		}
		paths := enabled[name]
		for rn := range paths {
			if !slices.ContainsFunc(p.Routes, func(r Route) bool { return r.Name == rn }) {
				errs = append(errs, fmt.Sprintf("%s has no route %q (routes: %s)", name, rn, routeNames(p)))
			}
		}
		for _, r := range p.Routes {
			path := r.Path
			if v := paths[r.Name]; v != "" {
				path = v
			}
			if err := checkPath(path); err != nil {
				errs = append(errs, fmt.Sprintf("%s.paths.%s: %v", name, r.Name, err))
				continue
			}
			if other, dup := seen[path]; dup {
				errs = append(errs, fmt.Sprintf("%s.paths.%s: %s is already served by %s", name, r.Name, path, other))
				continue
			}
			seen[path] = name + "." + r.Name
			out = append(out, Endpoint{Profile: name, Seed: p.Seed, Path: path, Route: r})
		}
	}
	sort.Strings(errs)
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return out, nil
}

func routeNames(p Profile) string {
	var n []string
	for _, r := range p.Routes {
		n = append(n, r.Name)
	}
	return strings.Join(n, ", ")
}

// checkPath allows plain absolute paths: the router takes ':' and '*' for parameters.
func checkPath(p string) error {
	if !strings.HasPrefix(p, "/") || len(p) > 200 {
		return fmt.Errorf("%q must be an absolute path of at most 200 bytes", p)
	}
	for _, r := range p {
		if r <= ' ' || r > '~' || strings.ContainsRune(":*?#%", r) {
			return fmt.Errorf("%q may contain only printable ASCII without spaces, ':', '*', '?', '#' or '%%'", p)
		}
	}
	return nil
}

// answer is what a seed API says for one protocol error code.
type answer[C any] struct {
	code C
	// status is the HTTP status; 0 keeps the protocol error's.
	status int
	// message is the text; "" uses the protocol error's description, which names what to fix
	// and never carries a secret.
	message string
}

// table maps protocol error codes to a seed API's answers. The entry under "" answers every
// code the table does not name.
type table[C any] map[string]answer[C]

// find is the answer for e, with its status and message filled in.
func (t table[C]) find(e *protocol.Error) answer[C] {
	a, ok := t[e.Code]
	if !ok {
		a = t[""]
	}
	if a.status == 0 {
		a.status = e.Status()
	}
	if a.message == "" {
		a.message = e.Description
		if a.message == "" {
			a.message = e.Code
		}
	}
	return a
}
