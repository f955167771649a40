package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// scratch holds what the whole test binary shares (the built fieldtrack binary); TestMain removes it.
var scratch string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fieldtrack-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	scratch = dir
	code := m.Run()
	if err := os.RemoveAll(dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
	}
	os.Exit(code)
}

// repoRoot is the directory of the module's go.mod, found upwards from the test's working directory.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(mod, []byte("module github.com/fieldtrack/fieldtrack\n")) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	t.Fatal("repository root (go.mod of github.com/fieldtrack/fieldtrack) not found above the working directory")
	return ""
}

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// fieldtrackBinary builds cmd/fieldtrack once per test binary and returns its path.
func fieldtrackBinary(t testing.TB) string {
	t.Helper()
	root := repoRoot(t)
	buildOnce.Do(func() {
		out := filepath.Join(scratch, "fieldtrack")
		started := time.Now()
		cmd := exec.Command("go", "build", "-o", out, "./cmd/fieldtrack")
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/fieldtrack: %w\n%s", err, b)
			return
		}
		binary = out
		t.Logf("built %s in %s", out, time.Since(started).Round(time.Millisecond))
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	if binary == "" {
		t.Fatal(errors.New("fieldtrack binary unavailable"))
	}
	return binary
}
