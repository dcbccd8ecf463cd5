package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tokensmith/tokensmith/profiles"
	"gopkg.in/yaml.v3"
)

// Profiles are the seed API profiles turned on, by name, each with the paths of the routes
// that are not served at their defaults. In YAML either a list of names or a map:
//
//	profiles: [rahmet, tokens-make, atol]
//
//	profiles:
//	  rahmet: {}
//	  atol:
//	    paths: {token: /v4/getToken}
type Profiles map[string]ProfileConfig

// ProfileConfig is one profile's settings.
type ProfileConfig struct {
	// Paths maps route names to the paths they are served at.
	Paths map[string]string `yaml:"paths"`
}

// UnmarshalYAML reads a list of names or a map of settings; unknown keys are refused, as in
// the rest of the file.
func (p *Profiles) UnmarshalYAML(n *yaml.Node) error {
	out := Profiles{}
	if n.Kind == yaml.SequenceNode {
		var names []string
		if err := n.Decode(&names); err != nil {
			return err
		}
		for _, name := range names {
			out[name] = ProfileConfig{}
		}
		*p = out
		return nil
	}
	var raw map[string]map[string]map[string]string
	if err := n.Decode(&raw); err != nil {
		return fmt.Errorf("profiles: a list of names, or a map of name to {paths: {route: path}}: %w", err)
	}
	for name, settings := range raw {
		for k := range settings {
			if k != "paths" {
				return fmt.Errorf("profiles.%s: unknown setting %q (only paths)", name, k)
			}
		}
		out[name] = ProfileConfig{Paths: settings["paths"]}
	}
	*p = out
	return nil
}

// only keeps the profiles named in list (comma-separated, as TOKENSMITH_PROFILES), with the
// settings p has for them.
func (p Profiles) only(list string) Profiles {
	out := Profiles{}
	for _, name := range strings.Split(list, ",") {
		if name = strings.TrimSpace(name); name != "" {
			out[name] = p[name]
		}
	}
	return out
}

// reservedPaths are served by the public listener itself; no profile may take them.
var reservedPaths = []string{"/oauth2/", "/.well-known/", "/healthz", "/readyz", "/console/"}

// ProfileEndpoints are the routes of the profiles turned on, at their paths.
func (c Config) ProfileEndpoints() ([]profiles.Endpoint, error) {
	enabled := map[string]map[string]string{}
	for name, pc := range c.Profiles {
		enabled[name] = pc.Paths
	}
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
