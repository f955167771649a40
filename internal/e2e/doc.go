// Package e2e holds end-to-end tests of the event pipeline: whole servers, started in-process through
// app.Run or as `fieldtrack serve` child processes, against real Postgres clusters, observed the way
// their users observe them (SSE streams, webhook deliveries, SQL). It has no code outside its tests.
package e2e
