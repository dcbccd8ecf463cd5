// Package config owns Tokensmith's one typed configuration: defaults, a YAML file, then
// TOKENSMITH_* environment overrides, then Validate, which names every bad field at once so
// the process can refuse to start with one clear line.
package config

//go:generate go run ./internal/gendoc
