package e2e

import (
	"context"
	_ "embed"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldtrack/fieldtrack/internal/testfactory"
)

// The client libraries the dashboard logs in with, at the versions this test was written against.
var supabasePackages = []string{"@supabase/supabase-js@2.119.1", "@supabase/ssr@0.12.7"}

//go:embed testdata/supabase_flow.mjs
var supabaseFlow []byte

// npmPackages installs the packages from the npm registry into a cache directory (once per machine and
// versions) and returns that directory.
func npmPackages(t *testing.T, packages []string) string {
	t.Helper()
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatal("this test needs Node.js 18+ and npm on PATH (Debian: apt-get install nodejs npm):", err)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "fieldtrack-e2e", strings.NewReplacer("@", "", "/", "-").Replace(strings.Join(packages, "_")))
	if _, err := os.Stat(filepath.Join(dir, "node_modules", ".package-lock.json")); err == nil {
		return dir
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"private":true,"type":"module"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	args := append([]string{"install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix", dir}, packages...)
	if out, err := exec.CommandContext(ctx, npm, args...).CombinedOutput(); err != nil {
		t.Fatalf("npm install %v: %v\n%s", packages, err, out)
	}
	return dir
}

// TestSupabaseJS_SignsInCallsTheAPIRefreshesAndSignsOut drives the login flow of the dashboard's own
// client libraries (supabase-js in the browser, @supabase/ssr's cookie session in its middleware)
// against the server, pointed at it as their Supabase URL.
func TestSupabaseJS_SignsInCallsTheAPIRefreshesAndSignsOut(t *testing.T) {
	t.Parallel()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("this test needs Node.js 18+ on PATH:", err)
	}
	dir := npmPackages(t, supabasePackages)
	script := filepath.Join(dir, "flow-"+time.Now().Format("150405.000000")+".mjs")
	if err := os.WriteFile(script, supabaseFlow, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(script) })

	// A one-minute access token is inside supabase-js's expiry margin (90 s): every later read of the
	// session refreshes it, which is what the cookie part of the flow checks.
	srv := startServer(t, map[string]string{"AUTH_ACCESS_TOKEN_TTL_MS": "60000"})
	org := testfactory.NewOrg(t)
	emp := testfactory.NewEmployee(t, org, "Uses The Dashboard")
	login := testfactory.GivePassword(t, org.ID, emp.UserID)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "FT_URL="+srv.base, "FT_EMAIL="+login.Email, "FT_PASSWORD="+login.Password)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the supabase-js flow failed: %v\n%s", err, out)
	}
	var result struct {
		OK     bool   `json:"ok"`
		Cookie string `json:"cookie"`
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &result); err != nil || !result.OK {
		t.Fatalf("the flow printed %s", out)
	}
	if result.Cookie != "sb-127-auth-token" {
		t.Errorf("session cookie %q, want sb-127-auth-token (the first label of the server's host)", result.Cookie)
	}
}
