// Package sql holds the schema as golang-migrate files (000001_name.up.sql / .down.sql). sqlc reads the
// same files, so the generated queries are checked against exactly what production runs.
package sql

import "embed"

// Migrations are the embedded migration files.
//
//go:embed *.sql
var Migrations embed.FS
