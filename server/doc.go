// Package server is Tokensmith's HTTP layer on Gin: it parses requests, calls grants, keys and
// registry, and renders answers. It holds no business rules. Errors from every layer arrive as
// protocol.Error values and are rendered by writeError alone.
package server
