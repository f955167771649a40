package main

// The DBA's and analyst's commands: reconciliation of the snapshots, and analyst logins.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/fieldtrack/fieldtrack/internal/analyst"
	"github.com/fieldtrack/fieldtrack/internal/db"
)

// reconcileCmd is `fieldtrack reconcile [--dry-run] [--org ID]`: every organization's snapshots (or
// one's) against what their sources say, each organization in a transaction of its own, repaired unless
// --dry-run; prints the report per table and the organizations that drifted.
func reconcileCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("reconcile", flag.ContinueOnError)
	dry := fs.Bool("dry-run", false, "report the drift, repair nothing")
	orgFlag := fs.String("org", "", "only this organization")
	if err := fs.Parse(args); err != nil {
		return err
	}
	pool, err := ownerPool(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	q := db.New()
	var orgs []uuid.UUID
	if *orgFlag != "" {
		id, err := uuid.Parse(*orgFlag)
		if err != nil {
			return errors.New("--org must be a UUID")
		}
		orgs = []uuid.UUID{id}
	} else if orgs, err = q.OrganizationIDs(ctx, pool); err != nil {
		return err
	}

	type total struct{ checked, inserted, updated, deleted, orgs int64 }
	totals := map[string]*total{}
	var tables []string
	var drifted []string
	started := time.Now()
	for _, org := range orgs {
		rows, err := q.ReconcileOrg(ctx, pool, db.ReconcileOrgParams{OrgID: org, DryRun: *dry})
		if err != nil {
			return fmt.Errorf("organization %s: %w", org, err)
		}
		for _, r := range rows {
			t := totals[r.TableName]
			if t == nil {
				t = &total{}
				totals[r.TableName] = t
				tables = append(tables, r.TableName)
			}
			t.checked += r.RowsChecked
			t.inserted += r.RowsInserted
			t.updated += r.RowsUpdated
			t.deleted += r.RowsDeleted
			if n := r.RowsInserted + r.RowsUpdated + r.RowsDeleted; n > 0 {
				t.orgs++
				drifted = append(drifted, fmt.Sprintf("%s\t%s\t%d\t%d\t%d", org, r.TableName, r.RowsInserted,
					r.RowsUpdated, r.RowsDeleted))
			}
		}
	}

	verb := "repaired"
	if *dry {
		verb = "to repair (dry run)"
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "table\tchecked\tinserted\tupdated\tdeleted\torganizations drifted\t\n")
	for _, name := range tables {
		t := totals[name]
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%d\t\n", name, t.checked, t.inserted, t.updated, t.deleted, t.orgs)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Printf("%d organizations in %s; rows %s are counted above.\n", len(orgs), time.Since(started).Round(time.Millisecond), verb)
	if len(drifted) > 0 {
		fmt.Println("\ndrift by organization:")
		w = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "organization\ttable\tinserted\tupdated\tdeleted")
		for _, d := range drifted {
			fmt.Fprintln(w, d)
		}
		return w.Flush()
	}
	return nil
}

// snapshotsVersion is the migration that creates the snapshot tables (sql/000014).
const snapshotsVersion = 14

// buildSnapshots fills the snapshot tables from the existing rows after the migration that made them,
// one organization per transaction (a large history would otherwise hold the migration's locks).
func buildSnapshots(ctx context.Context, url string) error {
	pool, err := db.NewPool(ctx, db.PoolConfig{URL: url, MaxConns: 1})
	if err != nil {
		return err
	}
	defer pool.Close()
	q := db.New()
	orgs, err := q.OrganizationIDs(ctx, pool)
	if err != nil || len(orgs) == 0 {
		return err
	}
	started := time.Now()
	for _, org := range orgs {
		if _, err := q.ReconcileOrg(ctx, pool, db.ReconcileOrgParams{OrgID: org, DryRun: false}); err != nil {
			return fmt.Errorf("organization %s: %w", org, err)
		}
	}
	fmt.Printf("built the snapshots of %d organizations in %s\n", len(orgs), time.Since(started).Round(time.Millisecond))
	return nil
}

// analystCmd is `fieldtrack analyst grant --org ID --login NAME` (password from stdin, or generated and
// printed once) and `fieldtrack analyst revoke --login NAME`.
func analystCmd(ctx context.Context, args []string) error {
	if len(args) == 0 || (args[0] != "grant" && args[0] != "revoke") {
		return errors.New("analyst needs grant or revoke")
	}
	fs := flag.NewFlagSet("analyst "+args[0], flag.ContinueOnError)
	orgFlag := fs.String("org", "", "the organization the login reads (grant)")
	login := fs.String("login", "", "the Postgres login (required)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *login == "" {
		return errors.New("--login is required")
	}
	pool, err := ownerPool(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	if args[0] == "revoke" {
		if err := analyst.Revoke(ctx, pool, *login); err != nil {
			return err
		}
		fmt.Println("revoked analyst login", *login)
		return nil
	}
	org, err := uuid.Parse(*orgFlag)
	if err != nil {
		return errors.New("--org must be a UUID")
	}
	pw, generated, err := passwordInput()
	if err != nil {
		return err
	}
	if err := analyst.Grant(ctx, pool, org, *login, pw); err != nil {
		return err
	}
	fmt.Printf("analyst login %s reads organization %s (schema analytics)\n", *login, org)
	printGenerated(generated, pw)
	return nil
}
