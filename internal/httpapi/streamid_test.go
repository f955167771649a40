package httpapi

import (
	"bytes"
	"crypto/rand"
	"errors"
	"math"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fieldtrack/fieldtrack/internal/db"
	"github.com/fieldtrack/fieldtrack/internal/testfactory"
)

func testStreamIDs(t *testing.T, key []byte, org uuid.UUID) streamIDs {
	t.Helper()
	c, err := newStreamIDs(key, org)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestStreamIDs_OpaqueAndOnlyTheirOrganizationsPosition(t *testing.T) {
	t.Parallel()
	key, otherKey := make([]byte, 32), make([]byte, 32)
	_, _ = rand.Read(key)
	_, _ = rand.Read(otherKey)
	org, other := uuid.New(), uuid.New()
	mine := testStreamIDs(t, key, org)

	seen := map[string]bool{}
	for _, pos := range []int64{0, 1, 2, 255, 256, 1 << 40, math.MaxInt64} {
		id := mine.id(pos)
		if len(id) != streamIDLen || bytes.ContainsAny([]byte(id), "+/=") || seen[id] {
			t.Fatalf("id of %d is %q: want 22 characters of unpadded base64url, each position its own", pos, id)
		}
		seen[id] = true
		if id != mine.id(pos) || id != testStreamIDs(t, key, org).id(pos) {
			t.Fatalf("id of %d differs between calls or codecs: every process must give an event the same id", pos)
		}
		if got, ok := mine.position(id); !ok || got != pos {
			t.Fatalf("position(%q) = %d, %v; want %d", id, got, ok, pos)
		}
	}

	foreign := testStreamIDs(t, key, other).id(42)
	flipped := []byte(mine.id(42))
	flipped[3] ^= 1
	for name, id := range map[string]string{
		"another organization's id":      foreign,
		"an id under another key":        testStreamIDs(t, otherKey, org).id(42),
		"an old numeric id":              "42",
		"a negative number":              "-1",
		"garbage":                        "abc",
		"an id tampered with":            string(flipped),
		"zeros of an id's length":        "AAAAAAAAAAAAAAAAAAAAAA",
		"padded base64":                  mine.id(42) + "==",
		"a non-canonical last character": mine.id(42)[:21] + "B", // its unused bits set: one spelling per id
		"empty":                          "",
	} {
		if pos, ok := mine.position(id); ok {
			t.Errorf("%s %q decodes to position %d", name, id, pos)
		}
	}
	// The position does not show: ids of consecutive positions share no prefix a client could count by.
	a, b := mine.id(1000), mine.id(1001)
	if a[:4] == b[:4] {
		t.Errorf("ids of consecutive positions look alike: %s %s", a, b)
	}
}

func TestStreamKey_TheSameForEveryServerAndOutOfTheAPIRolesReach(t *testing.T) {
	t.Parallel()
	one, two := setup(t), setup(t)
	k1, err := one.server.loadStreamKey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	k2, err := two.server.loadStreamKey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(k1) != 32 || !bytes.Equal(k1, k2) {
		t.Fatalf("stream keys of two servers: %d bytes, equal %v; want the one 32-byte key of app.stream_keys", len(k1), bytes.Equal(k1, k2))
	}
	org := testfactory.NewOrg(t)
	_, err = db.Do(t.Context(), testfactory.Pool(t), testfactory.AdminClaims(org), db.TxOptions{},
		func(tx db.DBTX) ([]byte, error) { return db.New().StreamKey(t.Context(), tx) })
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
		t.Fatalf("an admin's request reading app.stream_keys: %v, want permission denied", err)
	}
}
