// Package config owns Tokensmith's one typed configuration: defaults, a YAML file, then
// TOKENSMITH_* environment overrides, then Validate, which names every bad field at once so
// the process can refuse to start with one clear line.
//
// The configuration reference, docs/configuration.md, is generated from Config: keys and
// variables from the struct tags, defaults from Default, meanings from the fields' doc
// comments, which are therefore written for operators. After changing a field, run
// go generate ./config; a test fails while the page is stale.
package config

//go:generate go run ../cmd/configref/gendoc
