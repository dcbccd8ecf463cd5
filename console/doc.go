// Package console is the integration console: the web pages integrators use instead
// of curl, as livedigital's "Integration" cabinet and Evotor's developer portal offer. A user
// signs in with username and password, through the password grant's own check and failed-login
// backoff, and sees the clients they own (regenerating a secret) and their personal tokens
// (creating one, shown once, and deleting one).
//
// Pages are server-rendered with html/template from files embedded in the binary and work
// without JavaScript; a small script only adds copy buttons. Sessions live in the store, keyed
// by a hash of the id the browser holds, so signing out is real on every replica. Every change
// goes through the registry, with the admin API's rules and change feed. The package owns its
// own routes, session and CSRF rules and security headers; server/ only mounts it.
package console
