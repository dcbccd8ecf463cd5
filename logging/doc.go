// Package logging sets up Tokensmith's log/slog logger and carries the request context every
// log line and audit event of a request is stamped with. It owns the handler (text or JSON, a
// level), the request id and caller address kept in a request's context (added to every line
// logged with that context, by any package, with the trace and span ids when tracing is on), the masking of attributes whose names suggest a
// secret — a second line of defence behind the rule that no secret is logged at all — and
// the buffering that writes log output in batches rather than a system call per line.
package logging
