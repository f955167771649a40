// Package seed loads the demo organization used by `make run`.
package seed

import (
	"context"
	_ "embed"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

//go:embed demo.sql
var demoSQL string

// Demo identities, fixed so tokens printed once keep working across restarts.
var (
	DemoOrgID       = uuid.MustParse("a0000000-0000-4000-8000-000000000001")
	DemoAdminUserID = uuid.MustParse("a0000000-0000-4000-8000-0000000000a1")
	DemoEmployeeUID = uuid.MustParse("a0000000-0000-4000-8000-0000000000e1")
	DemoEmployeeID  = uuid.MustParse("b0000000-0000-4000-8000-000000000001")
)

// DemoLogins are the demo organization's accounts, in the order make run prints them.
var DemoLogins = []string{"admin@demo.fieldtrack.test", "asha.rao@demo.fieldtrack.test",
	"ben.okafor@demo.fieldtrack.test", "chen.li@demo.fieldtrack.test"}

// Load inserts the demo data; running it again changes nothing.
func Load(ctx context.Context, databaseURL string) error {
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, demoSQL); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	return nil
}
