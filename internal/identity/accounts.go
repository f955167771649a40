package identity

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/mail"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldtrack/fieldtrack/internal/auth"
	"github.com/fieldtrack/fieldtrack/internal/db"
)

// The operator's account tools (`fieldtrack user`, `fieldtrack seed`), run with the owner's
// DATABASE_URL: there is no API for them.

// NewUser is an account to create.
type NewUser struct {
	OrgID      uuid.UUID
	Email      string
	Role       auth.Role
	EmployeeID uuid.NullUUID // links this employee (of the organization, without a user) to the account
	Password   string
}

// CreateUser creates the account and its password in one transaction and returns its id.
func CreateUser(ctx context.Context, pool *pgxpool.Pool, u NewUser) (uuid.UUID, error) {
	if a, err := mail.ParseAddress(u.Email); err != nil || a.Address != u.Email {
		return uuid.Nil, fmt.Errorf("%q is not an email address", u.Email)
	}
	if u.Role != auth.RoleAdmin && u.Role != auth.RoleEmployee {
		return uuid.Nil, errors.New("the role is ADMIN or EMPLOYEE")
	}
	if u.Role == auth.RoleEmployee && !u.EmployeeID.Valid {
		return uuid.Nil, errors.New("an EMPLOYEE account needs its employee")
	}
	hash, err := HashPassword(u.Password)
	if err != nil {
		return uuid.Nil, err
	}
	q := db.New()
	var id uuid.UUID
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if id, err = q.UserCreate(ctx, tx, db.UserCreateParams{OrgID: u.OrgID, Email: u.Email, Role: string(u.Role)}); err != nil {
			return err
		}
		if _, err := q.UserSetPassword(ctx, tx, db.UserSetPasswordParams{Email: u.Email, PasswordHash: hash}); err != nil {
			return err
		}
		if !u.EmployeeID.Valid {
			return nil
		}
		n, err := q.EmployeeLinkUser(ctx, tx, db.EmployeeLinkUserParams{OrgID: u.OrgID, EmployeeID: u.EmployeeID.UUID, UserID: &id})
		if err == nil && n == 0 {
			err = errors.New("no employee of that id without an account in the organization")
		}
		return err
	})
	return id, err
}

// SetPassword sets the password of the account of email and ends its sessions (a password reset locks
// out whoever knew the old one).
func SetPassword(ctx context.Context, pool *pgxpool.Pool, email, password string) error {
	hash, err := HashPassword(password)
	if err != nil {
		return err
	}
	n, err := db.New().UserSetPassword(ctx, pool, db.UserSetPasswordParams{Email: email, PasswordHash: hash})
	if err == nil && n == 0 {
		err = fmt.Errorf("no account with email %s", email)
	}
	return err
}

// EnsurePassword sets the password of the account of email unless it is that already: a password change
// ends the account's sessions, which re-running `fieldtrack seed` must not do.
func EnsurePassword(ctx context.Context, pool *pgxpool.Pool, email, password string) error {
	a, err := db.Do(ctx, pool, db.Claims{}, issuer, func(tx db.DBTX) (db.AuthAccountByEmailRow, error) {
		return db.New().AuthAccountByEmail(ctx, tx, email)
	})
	if err != nil {
		return err
	}
	if a.PasswordHash != nil {
		if ok, err := checkPassword(*a.PasswordHash, password); err == nil && ok {
			return nil
		}
	}
	return SetPassword(ctx, pool, email, password)
}

// SetDisabled disables the account of email (its sessions and outstanding tokens stop at once) or
// enables it again.
func SetDisabled(ctx context.Context, pool *pgxpool.Pool, email string, disabled bool) error {
	n, err := db.New().UserSetDisabled(ctx, pool, db.UserSetDisabledParams{Email: email, Disabled: disabled})
	if err == nil && n == 0 {
		err = fmt.Errorf("no account with email %s", email)
	}
	return err
}

// GeneratePassword returns a random password (26 base32 characters, 130 bits).
func GeneratePassword() string { return rand.Text() }
