package db

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// registerUUID makes conn send google/uuid values (the ids of every query, sqlc's uuid type) as the 16
// bytes of Postgres's binary uuid, not through their driver.Valuer as 36-character text that the server
// parses again: pgx's uuid codec takes only its own UUIDValuer, so without this every id of every request
// is formatted and parsed (about 6% of a single-fix request's CPU in the server's profile).
func registerUUID(_ context.Context, conn *pgx.Conn) error {
	m := conn.TypeMap()
	m.TryWrapEncodePlanFuncs = append([]pgtype.TryWrapEncodePlanFunc{tryWrapUUIDEncodePlan}, m.TryWrapEncodePlanFuncs...)
	return nil
}

// tryWrapUUIDEncodePlan encodes a uuid.UUID or uuid.NullUUID as the pgtype.UUID it is.
func tryWrapUUIDEncodePlan(value any) (pgtype.WrappedEncodePlanNextSetter, any, bool) {
	switch v := value.(type) {
	case uuid.UUID:
		return &uuidEncodePlan{}, pgtype.UUID{Bytes: v, Valid: true}, true
	case uuid.NullUUID:
		return &uuidEncodePlan{}, pgtype.UUID{Bytes: v.UUID, Valid: v.Valid}, true
	}
	return nil, nil, false
}

type uuidEncodePlan struct{ next pgtype.EncodePlan }

func (p *uuidEncodePlan) SetNext(next pgtype.EncodePlan) { p.next = next }

func (p *uuidEncodePlan) Encode(value any, buf []byte) ([]byte, error) {
	switch v := value.(type) {
	case uuid.UUID:
		return p.next.Encode(pgtype.UUID{Bytes: v, Valid: true}, buf)
	case uuid.NullUUID:
		return p.next.Encode(pgtype.UUID{Bytes: v.UUID, Valid: v.Valid}, buf)
	}
	return p.next.Encode(value, buf)
}
