package events

import (
	"context"
	"errors"
	"fmt"

	"github.com/fieldtrack/fieldtrack/internal/db"
)

// ErrLoginTooBroad is what CheckListenerLogin and CheckPoolLogin wrap when a login may do more than its
// part needs.
var ErrLoginTooBroad = errors.New("login too privileged")

// CheckListenerLogin asks Postgres whether conn's login (session_user) is fit for the listener. The
// listener needs REPLICATION, and with REPLICATION a login can read every tenant's changes through a slot
// of its own: so the listener's login must not be one that requests could run as, that is one that may
// switch to fieldtrack_api (a superuser may switch to any role). It returns nil for such a fit login
// (fieldtrack_listener), an error wrapping ErrLoginTooBroad that names the login and the fix when it is
// not, and the query's error when it could not ask.
func CheckListenerLogin(ctx context.Context, conn db.DBTX) error {
	a, err := db.New().LoginAttributes(ctx, conn)
	if err != nil {
		return fmt.Errorf("the listener's login: %w", err)
	}
	what := ""
	switch {
	case a.Superuser:
		what = "is a superuser"
	case a.MayBeApi:
		what = "may switch to fieldtrack_api"
	case a.MayEscalate:
		what = "has CREATEROLE or BYPASSRLS"
	default:
		return nil
	}
	return fmt.Errorf("%w: the listener's login %q %s; with the REPLICATION the listener needs, a login "+
		"requests can run as could read every tenant's changes: set LISTENER_DATABASE_URL to log in as "+
		"fieldtrack_listener (or EVENTS_LISTENER_ENABLED=false)", ErrLoginTooBroad, a.Login, what)
}

// CheckPoolLogin asks Postgres whether conn's login, that of serve's pool (DATABASE_URL), has REPLICATION
// (a superuser has it implicitly), which the pool never needs. It returns nil when it has not, an error
// wrapping ErrLoginTooBroad that names the login and the fix when it has, and the query's error when it
// could not ask.
func CheckPoolLogin(ctx context.Context, conn db.DBTX) error {
	a, err := db.New().LoginAttributes(ctx, conn)
	if err != nil {
		return fmt.Errorf("the pool's login: %w", err)
	}
	if !a.Superuser && !a.Replication {
		return nil
	}
	return fmt.Errorf("%w: serve's pool logs in as %q, which has REPLICATION (a superuser has it): the pool "+
		"needs none; set DATABASE_URL to log in as fieldtrack_authenticator (the listener has "+
		"LISTENER_DATABASE_URL)", ErrLoginTooBroad, a.Login)
}
