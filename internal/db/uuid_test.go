package db_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/fieldtrack/fieldtrack/internal/testfactory"
)

// The pool sends google/uuid values as binary uuids: equal to their text, NULL for an invalid NullUUID,
// element by element in arrays.
func TestPool_SendsGoogleUUIDsAsUUIDs(t *testing.T) {
	t.Parallel()
	p := testfactory.Pool(t)
	id := uuid.New()
	var same, null, inArray bool
	err := p.QueryRow(t.Context(), `SELECT $1::uuid = $2::text::uuid, $3::uuid IS NULL, $2::text::uuid = ANY ($4::uuid[])`,
		id, id.String(), uuid.NullUUID{}, []uuid.UUID{uuid.New(), id}).Scan(&same, &null, &inArray)
	if err != nil || !same || !null || !inArray {
		t.Fatalf("same %v, null %v, in array %v: %v", same, null, inArray, err)
	}
	// And through the binary uuid codec, not the driver.Valuer's text.
	conn, err := p.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	plan := conn.Conn().TypeMap().PlanEncode(pgtype.UUIDOID, pgtype.BinaryFormatCode, id)
	if got := fmt.Sprintf("%T", plan); !strings.Contains(got, "uuidEncodePlan") {
		t.Fatalf("a uuid.UUID is encoded by %s", got)
	}
	var back uuid.UUID
	if err := p.QueryRow(t.Context(), `SELECT $1::uuid`, uuid.NullUUID{UUID: id, Valid: true}).Scan(&back); err != nil || back != id {
		t.Fatalf("read back %v: %v", back, err)
	}
}
