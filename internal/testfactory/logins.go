package testfactory

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/fieldtrack/fieldtrack/internal/identity"
)

// Login is an email and password that sign in to built-in identity.
type Login struct {
	Email, Password string
}

// GivePassword gives the user a password for built-in identity and returns its login.
func GivePassword(t testing.TB, org, user uuid.UUID) Login {
	t.Helper()
	l := Login{Password: "pw-" + uuid.NewString()}
	hash, err := identity.HashPassword(l.Password)
	if err != nil {
		t.Fatal(err)
	}
	err = Pool(t).QueryRow(context.Background(), `WITH p AS (
			INSERT INTO app.user_passwords (organization_id, user_id, password_hash) VALUES ($1, $2, $3)
			ON CONFLICT (organization_id, user_id) DO UPDATE SET password_hash = excluded.password_hash)
		SELECT email FROM users WHERE organization_id = $1 AND id = $2`, org, user, hash).Scan(&l.Email)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
