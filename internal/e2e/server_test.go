package e2e

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fieldtrack/fieldtrack/internal/app"
	"github.com/fieldtrack/fieldtrack/internal/config"
	"github.com/fieldtrack/fieldtrack/internal/testfactory"
)

// logLines collects a server's log output (JSON lines) with the time each line arrived, so tests can
// tell when a process started leading and show the tail of the log when they fail.
type logLines struct {
	mu      sync.Mutex
	partial []byte
	lines   []logLine
}

type logLine struct {
	at   time.Time
	text string
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		if len(l.lines) < 20_000 {
			l.lines = append(l.lines, logLine{at: now, text: string(l.partial[:i])})
		}
		l.partial = l.partial[i+1:]
	}
	return len(p), nil
}

// first returns when the first line containing s arrived.
func (l *logLines) first(s string) (time.Time, bool) { return l.nth(s, 1) }

// nth returns when the nth line containing s arrived.
func (l *logLines) nth(s string, n int) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if strings.Contains(line.text, s) {
			if n--; n == 0 {
				return line.at, true
			}
		}
	}
	return time.Time{}, false
}

func (l *logLines) dump(t testing.TB, name string, n int) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	from := max(0, len(l.lines)-n)
	for _, line := range l.lines[from:] {
		t.Logf("%s | %s", name, line.text)
	}
}

// leadingLine is what the listener logs when it takes the leader lock.
const leadingLine = "leading: consuming the outbox slot"

// server is an in-process server: app.Run on a loopback listener, stopped by the test's cleanup.
type server struct {
	base string
	logs *logLines
}

// startServer runs app.Run with the test configuration plus env and waits until it answers.
func startServer(t *testing.T, env map[string]string) *server {
	t.Helper()
	vars := map[string]string{"DATABASE_URL": testfactory.URL(t), "JWT_SECRET": testfactory.Secret, "APP_ENV": "test",
		"RATE_LIMIT_DISABLED": "true", "RECEIPTS_DIR": t.TempDir()}
	maps.Copy(vars, env)
	cfg, err := config.Load(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{base: "http://" + ln.Addr().String(), logs: &logLines{}}
	stopped := make(chan struct{})
	var runErr error
	go func() {
		defer close(stopped)
		runErr = app.Run(ctx, cfg, ln, slog.New(slog.NewJSONHandler(s.logs, nil)))
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-stopped:
			if runErr != nil {
				t.Errorf("server %s stopped with %v", s.base, runErr)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("server %s did not stop within 30 s of its context ending", s.base)
		}
		if t.Failed() {
			s.logs.dump(t, s.base, 30)
		}
	})
	testfactory.Eventually(t, 20*time.Second, "the in-process server to answer /health", func() (bool, error) {
		select {
		case <-stopped:
			t.Fatalf("server stopped during start-up: %v", runErr)
		default:
		}
		return healthy(s.base)
	})
	return s
}

func healthy(base string) (bool, error) {
	res, err := quick.Get(base + "/health")
	if err != nil {
		return false, err
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return false, fmt.Errorf("/health: %d", res.StatusCode)
	}
	return true, nil
}

// quick is for requests that must answer promptly (API calls, probes); streams use their own client.
var quick = &http.Client{Timeout: 30 * time.Second}

// process is `fieldtrack serve` as a child process.
type process struct {
	name    string
	base    string
	cmd     *exec.Cmd
	logs    *logLines
	exited  chan struct{}
	started time.Time
}

// startProcess starts the fieldtrack binary with the test configuration plus env on a free port and
// waits until it answers. The test's cleanup stops it (SIGTERM, then SIGKILL) unless it already ended.
func startProcess(t *testing.T, name string, env map[string]string) *process {
	t.Helper()
	bin := fieldtrackBinary(t)
	port := freePort(t)
	vars := map[string]string{"DATABASE_URL": testfactory.URL(t), "JWT_SECRET": testfactory.Secret, "APP_ENV": "test",
		"PORT": strconv.Itoa(port), "LOG_LEVEL": "info", "RATE_LIMIT_DISABLED": "true",
		"RECEIPTS_DIR": t.TempDir()}
	maps.Copy(vars, env)
	cmd := exec.Command(bin, "serve")
	cmd.Env = os.Environ() // later entries win: the test's settings override the environment's
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &process{name: name, base: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd, logs: &logLines{},
		exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.started = time.Now()
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			p.logs.dump(t, name, 40)
		}
	})
	testfactory.Eventually(t, 30*time.Second, name+" to answer /health", func() (bool, error) {
		select {
		case <-p.exited:
			p.logs.dump(t, name, 40)
			t.Fatalf("%s exited during start-up: %v", name, cmd.ProcessState)
		default:
		}
		return healthy(p.base)
	})
	return p
}

// kill ends the process with SIGKILL, as a crash would, and waits until it is gone.
func (p *process) kill(t *testing.T) time.Time {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill %s: %v", p.name, err)
	}
	at := time.Now()
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s still running 10 s after SIGKILL", p.name)
	}
	return at
}

func (p *process) stop(t *testing.T) {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return
	case <-time.After(20 * time.Second):
		t.Errorf("%s ignored SIGTERM for 20 s; killing it", p.name)
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
