package app

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldtrack/fieldtrack/internal/config"
	"github.com/fieldtrack/fieldtrack/internal/events"
)

// checkLogins looks at the logins serve uses, before anything starts (README: "Roles and logins in
// production").
//
// The listener's login (LISTENER_DATABASE_URL) needs REPLICATION, with which a login can read every
// tenant's changes through a slot of its own; so it must not be a login requests can run as. When it may
// switch to fieldtrack_api (or is a superuser), checkLogins returns that as the error that stops start-up
// in production, and logs it as a warning elsewhere (make run and the tests use one superuser login for
// everything).
//
// The pool's login (DATABASE_URL) with REPLICATION is the same exposure seen from the other side, but it
// is only warned about, in production: requests never run as the login itself (each transaction switches
// to fieldtrack_api, and Postgres checks REPLICATION on the current role), so reaching the attribute takes
// SQL that resets the role first, which no query of ours does. A refusal would be the stricter choice;
// the warning leaves deployments that serve as an owner with REPLICATION running (as `make bench` does)
// while telling them to switch to fieldtrack_authenticator.
//
// A database that cannot be reached is logged and not an error: serve starts anyway (answering 503 until
// it can), and in production the listener checks its login again whenever it connects.
func checkLogins(ctx context.Context, cfg config.Config, pool *pgxpool.Pool, log *slog.Logger) error {
	if cfg.ListenerEnabled {
		err := checkListenerLogin(ctx, cfg.ListenerDatabaseURL)
		switch {
		case err == nil:
		case !errors.Is(err, events.ErrLoginTooBroad):
			log.Warn("could not check the listener's login now; the listener checks it when it connects",
				"error", err.Error())
		case cfg.Production():
			return err
		default:
			log.Warn("the listener's login would be refused with APP_ENV=production", "error", err.Error())
		}
	}
	if cfg.Production() {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := events.CheckPoolLogin(cctx, pool); errors.Is(err, events.ErrLoginTooBroad) {
			log.Warn("serve's pool login has REPLICATION, which it never needs", "error", err.Error())
		}
	}
	return nil
}

func checkListenerLogin(ctx context.Context, databaseURL string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return events.CheckListenerLogin(ctx, conn)
}
