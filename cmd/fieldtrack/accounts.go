package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldtrack/fieldtrack/internal/auth"
	"github.com/fieldtrack/fieldtrack/internal/db"
	"github.com/fieldtrack/fieldtrack/internal/identity"
)

// userCmd is `fieldtrack user create|password|disable|enable`.
func userCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("user needs create, password, disable or enable")
	}
	fs := flag.NewFlagSet("user "+args[0], flag.ContinueOnError)
	org := fs.String("org", "", "organization id (create)")
	email := fs.String("email", "", "the login's email (required)")
	role := fs.String("role", "", "ADMIN or EMPLOYEE (create)")
	employee := fs.String("employee", "", "employee id to link (create; required for EMPLOYEE)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *email == "" {
		return errors.New("--email is required")
	}
	pool, err := ownerPool(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	switch args[0] {
	case "create":
		u := identity.NewUser{Email: *email, Role: auth.Role(strings.ToUpper(*role))}
		if u.OrgID, err = uuid.Parse(*org); err != nil {
			return errors.New("--org must be a UUID")
		}
		if *employee != "" {
			id, err := uuid.Parse(*employee)
			if err != nil {
				return errors.New("--employee must be a UUID")
			}
			u.EmployeeID = uuid.NullUUID{UUID: id, Valid: true}
		}
		pw, generated, err := passwordInput()
		if err != nil {
			return err
		}
		u.Password = pw
		id, err := identity.CreateUser(ctx, pool, u)
		if err != nil {
			return err
		}
		fmt.Printf("created %s login %s (user %s)\n", u.Role, u.Email, id)
		printGenerated(generated, pw)
	case "password":
		pw, generated, err := passwordInput()
		if err != nil {
			return err
		}
		if err := identity.SetPassword(ctx, pool, *email, pw); err != nil {
			return err
		}
		fmt.Println("password set for", *email)
		printGenerated(generated, pw)
	case "disable", "enable":
		if err := identity.SetDisabled(ctx, pool, *email, args[0] == "disable"); err != nil {
			return err
		}
		fmt.Printf("%sd %s\n", args[0], *email)
	default:
		return fmt.Errorf("user: unknown action %q", args[0])
	}
	return nil
}

// passwordInput reads the password from stdin when it is piped (its first line), or generates one.
func passwordInput() (password string, generated bool, err error) {
	if st, err := os.Stdin.Stat(); err == nil && st.Mode()&os.ModeCharDevice == 0 {
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && line == "" {
			return "", false, errors.New("no password on stdin")
		}
		return strings.TrimRight(line, "\r\n"), false, nil
	}
	return identity.GeneratePassword(), true, nil
}

func printGenerated(generated bool, pw string) {
	if generated {
		fmt.Println("password (shown once):", pw)
	}
}

// keysCmd is `fieldtrack keys rotate`.
func keysCmd(ctx context.Context, args []string) error {
	if len(args) != 1 || args[0] != "rotate" {
		return errors.New("keys needs rotate")
	}
	pool, err := ownerPool(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	kid, err := identity.Rotate(ctx, pool)
	if err != nil {
		return err
	}
	fmt.Println("new signing key", kid, "- every server signs with it within a minute; the old key verifies until its tokens expire")
	return nil
}

func ownerPool(ctx context.Context) (*pgxpool.Pool, error) {
	url, err := databaseURL()
	if err != nil {
		return nil, err
	}
	return db.NewPool(ctx, db.PoolConfig{URL: url, MaxConns: 2})
}
