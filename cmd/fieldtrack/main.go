// Command fieldtrack is the FieldTrack server and its operator tools:
//
//	fieldtrack serve                      serve the HTTP API on PORT
//	fieldtrack migrate up|down N|version  apply or revert schema migrations
//	fieldtrack token --org ID --role R    mint a development JWT with JWT_SECRET
//	fieldtrack seed                       load the demo organization and print tokens and logins
//	fieldtrack user create|disable|enable|password   manage built-in identity's accounts
//	fieldtrack keys rotate                make a new signing key, retiring the current one
//	fieldtrack reconcile [--dry-run]      compare the snapshot tables with their sources and repair them
//	fieldtrack analyst grant|revoke       a Postgres login that reads one organization's analytics views
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fieldtrack:", err)
		os.Exit(1)
	}
}

const usage = `usage: fieldtrack <command> [flags]

commands:
  serve                      serve the HTTP API on PORT (default 8080)
  migrate up                 apply all pending migrations
  migrate down N             revert the last N migrations (N=all reverts everything)
  migrate version            print the applied migration version
  token --org ID --role R    mint a development JWT signed with JWT_SECRET
        [--employee ID] [--sub ID] [--ttl 1h] [--email E]
  seed                       load the demo organization (idempotent) and print tokens; with
                             DEMO_PASSWORD set, its accounts get that password
  user create --org ID --email E --role ADMIN|EMPLOYEE [--employee ID]
                             create a login (password read from stdin when piped, else generated
                             and printed once)
  user password --email E    set a login's password (stdin, or generated and printed once)
  user disable|enable --email E
                             disable a login (its sessions and tokens stop at once) or enable it
  keys rotate                make a new signing key; the old one verifies until its tokens expire
  reconcile [--dry-run] [--org ID]
                             compare every snapshot table with its sources, one organization per
                             transaction, and repair what drifted (--dry-run: only report it)
  analyst grant --org ID --login NAME
                             a Postgres login that reads schema analytics for one organization only
                             (password read from stdin when piped, else generated and printed once)
  analyst revoke --login NAME
`

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return fmt.Errorf("missing command")
	}
	switch args[0] {
	case "serve":
		return serve(ctx)
	case "migrate":
		return migrateCmd(args[1:])
	case "token":
		return tokenCmd(args[1:])
	case "seed":
		return seedCmd(ctx)
	case "user":
		return userCmd(ctx, args[1:])
	case "keys":
		return keysCmd(ctx, args[1:])
	case "reconcile":
		return reconcileCmd(ctx, args[1:])
	case "analyst":
		return analystCmd(ctx, args[1:])
	case "help", "-h", "--help":
		fmt.Print(usage)
		return nil
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
