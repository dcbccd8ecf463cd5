// Package audit records who got which token, when and from where, and who changed what on the
// admin side: one structured Event per token issued, reused, refreshed, exchanged,
// refused, replayed or revoked, and per admin change. Events never carry a secret: no
// credential, token, password or digest of one is ever put into an Event.
//
// Grants, the registry and the server hand events to a Recorder. The Writer here is the
// Recorder the server runs with: it queues events in a bounded buffer and a goroutine of its
// own writes them to a Sink (the log, a file of JSON lines, or a Redis stream) in batches, off
// the request path. A full buffer drops the event and counts it; recording never blocks or
// fails a request.
package audit
