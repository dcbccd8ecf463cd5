package config

import (
	"fmt"
	"strings"

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

// Enabled is the profiles turned on, each with the paths configured for its routes by route
// name (nil or a missing route: the route's default path). Which names and routes exist is the
// profiles' own business; the server resolves and checks them when it starts.
func (p Profiles) Enabled() map[string]map[string]string {
	out := make(map[string]map[string]string, len(p))
	for name, pc := range p {
		out[name] = pc.Paths
	}
	return out
}
