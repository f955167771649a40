// Package analyst makes and removes the Postgres logins analysts query schema analytics with: each is a
// member of fieldtrack_analyst bound to one organization (app.analyst_logins, sql/000015), whose rows
// are all it can read.
package analyst

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// loginName is what a login may be called: a plain lower-case identifier, never one of ours.
var loginName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Grant creates login (or, when it is already an analyst of org, sets its password) as an analyst of
// org, with password. Run with the owner's DATABASE_URL (it creates a role).
func Grant(ctx context.Context, pool *pgxpool.Pool, org uuid.UUID, login, password string) error {
	if !loginName.MatchString(login) || len(login) >= 11 && login[:11] == "fieldtrack_" {
		return fmt.Errorf("login %q: use lower-case letters, digits and _ (not fieldtrack_…), at most 63", login)
	}
	if len(password) < 12 {
		return errors.New("the password must have at least 12 characters")
	}
	for _, c := range password {
		if c < 0x20 || c > 0x7e {
			return errors.New("the password must be printable ASCII")
		}
	}
	verifier, err := scramVerifier(password)
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var exists bool
		var bound *uuid.UUID
		err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1),
			(SELECT organization_id FROM app.analyst_logins WHERE role_name = $1)`, login).Scan(&exists, &bound)
		if err != nil {
			return err
		}
		switch {
		case bound != nil && *bound != org:
			return fmt.Errorf("login %s is an analyst of organization %s already", login, *bound)
		case exists && bound == nil:
			return fmt.Errorf("role %s exists and is not an analyst: choose another name", login)
		}
		var orgExists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT FROM organizations WHERE id = $1)`, org).Scan(&orgExists); err != nil {
			return err
		}
		if !orgExists {
			return fmt.Errorf("no organization %s", org)
		}
		ident := pgx.Identifier{login}.Sanitize()
		// Utility statements take no parameters: the password goes as its SCRAM verifier, never in
		// clear text (statements can reach logs and pg_stat_statements).
		quoted := "'" + verifier + "'"
		if !exists {
			// Its privileges are fieldtrack_analyst's; its search path starts with the analysts' views;
			// its sessions read only, and neither a runaway query nor an idle transaction can hold the
			// database for long.
			stmts := []string{
				fmt.Sprintf(`CREATE ROLE %s LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
					CONNECTION LIMIT 10 PASSWORD %s IN ROLE fieldtrack_analyst`, ident, quoted),
				fmt.Sprintf(`ALTER ROLE %s SET search_path = analytics, public`, ident),
				fmt.Sprintf(`ALTER ROLE %s SET default_transaction_read_only = on`, ident),
				fmt.Sprintf(`ALTER ROLE %s SET statement_timeout = '5min'`, ident),
				fmt.Sprintf(`ALTER ROLE %s SET idle_in_transaction_session_timeout = '5min'`, ident),
			}
			var super bool
			if err := tx.QueryRow(ctx, `SELECT rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&super); err != nil {
				return err
			}
			if super { // only a superuser may bound its temporary files
				stmts = append(stmts, fmt.Sprintf(`ALTER ROLE %s SET temp_file_limit = '1GB'`, ident))
			}
			for _, stmt := range stmts {
				if _, err := tx.Exec(ctx, stmt); err != nil {
					return err
				}
			}
			_, err = tx.Exec(ctx, `INSERT INTO app.analyst_logins (role_name, organization_id) VALUES ($1, $2)`, login, org)
			return err
		}
		_, err = tx.Exec(ctx, fmt.Sprintf(`ALTER ROLE %s LOGIN PASSWORD %s`, ident, quoted))
		return err
	})
}

// Revoke removes an analyst's login: its role and its binding.
func Revoke(ctx context.Context, pool *pgxpool.Pool, login string) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM app.analyst_logins WHERE role_name = $1`, login)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("%s is not an analyst login", login)
		}
		_, err = tx.Exec(ctx, `DROP ROLE `+pgx.Identifier{login}.Sanitize())
		return err
	})
}

// scramVerifier is what Postgres stores for a SCRAM-SHA-256 password (RFC 5802, 7677), computed here so
// that the password itself never reaches the server. (Printable ASCII needs no SASLprep.)
func scramVerifier(password string) (string, error) {
	const iterations = 4096
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return "", err
	}
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	stored := sha256.Sum256(mac(salted, "Client Key"))
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iterations, b64(salt), b64(stored[:]), b64(mac(salted, "Server Key"))), nil
}
