package bench

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The pure parts of the events section; make bench runs the rest.

func TestParseSections(t *testing.T) {
	for in, want := range map[string]string{"gps,events": "gps,events", " Events ": "events", "events,gps,events": "events,gps", "export, gps": "export,gps"} {
		got, err := ParseSections(in)
		if err != nil || strings.Join(got, ",") != want {
			t.Errorf("ParseSections(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"", ",", "gps,webhooks"} {
		if _, err := ParseSections(bad); err == nil {
			t.Errorf("ParseSections(%q) accepted", bad)
		}
	}
	c := Config{Sections: []string{SectionEvents}}
	if c.runs(SectionGPS) || !c.runs(SectionEvents) || !(Config{}).runs(SectionGPS) {
		t.Error("runs() is wrong")
	}
}

func TestValidateEventsKnobs(t *testing.T) {
	base := Config{ServerURL: "http://127.0.0.1:1", DatabaseURL: "postgres://u@127.0.0.1:5432/db",
		Secret: []byte("0123456789abcdef"), Phase: time.Second, Concurrency: 1, Employees: 1,
		EventsRate: 500, EventsPhase: time.Minute, EventsPerTx: 1, ExportRows: 50_000,
		SnapshotEmployees: 1000, SnapshotSessions: 1_000_000, SnapshotPoints: 10_000_000,
		FanoutStreams: 1000, FanoutOrgs: 50, FanoutRate: 500, FanoutPhase: 30 * time.Second,
		TracedURL: "http://127.0.0.1:2", CollectorAddr: "127.0.0.1:3"}
	if err := base.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*Config){
		"rate":              func(c *Config) { c.EventsRate = 0 },
		"duration":          func(c *Config) { c.EventsPhase = 0 },
		"per tx":            func(c *Config) { c.EventsPerTx = 101 },
		"too many":          func(c *Config) { c.EventsRate, c.EventsPhase = 5000, 10*time.Minute },
		"half tls":          func(c *Config) { c.ReceiverCert = "x" },
		"section":           func(c *Config) { c.Sections = []string{"nope"} },
		"export":            func(c *Config) { c.ExportRows = 0 },
		"snapshot points":   func(c *Config) { c.SnapshotPoints = 100 },
		"snapshot sessions": func(c *Config) { c.SnapshotSessions = 10 },
		"no traced server":  func(c *Config) { c.TracedURL = "" },
		"traced = server":   func(c *Config) { c.TracedURL = c.ServerURL },
		"remote collector":  func(c *Config) { c.CollectorAddr = "10.0.0.1:4318" },
		"collector no port": func(c *Config) { c.CollectorAddr = "127.0.0.1" },
		"fan-out uneven":    func(c *Config) { c.FanoutStreams = 1001 },
		"fan-out no orgs":   func(c *Config) { c.FanoutOrgs = 0 },
		"fan-out few":       func(c *Config) { c.FanoutStreams, c.FanoutOrgs = 10, 20 },
		"fan-out too many":  func(c *Config) { c.FanoutStreams = 10_000 },
		"fan-out rate":      func(c *Config) { c.FanoutRate = 0 },
		"fan-out duration":  func(c *Config) { c.FanoutPhase = 0 },
	} {
		c := base
		mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted %+v", name, c)
		}
	}
	gpsOnly := base
	gpsOnly.Sections, gpsOnly.EventsRate, gpsOnly.TracedURL, gpsOnly.FanoutOrgs = []string{SectionGPS}, 0, "", 0
	if err := gpsOnly.Validate(); err != nil {
		t.Errorf("a GPS-only run checks the events or the tracing knobs: %v", err)
	}
}

func TestCompareIDs(t *testing.T) {
	for _, c := range []struct {
		want, got      []string
		missing, extra int
	}{
		{[]string{"a", "b", "c"}, []string{"a", "b", "c"}, 0, 0},
		{[]string{"a", "b", "c"}, []string{"a", "c"}, 1, 0},
		{[]string{"a", "b"}, []string{"a", "a", "b", "z"}, 0, 2}, // a duplicate and a stranger
		{nil, []string{"a"}, 0, 1},
		{[]string{"a"}, nil, 1, 0},
	} {
		if m, e := compareIDs(c.want, c.got); m != c.missing || e != c.extra {
			t.Errorf("compareIDs(%v, %v) = %d missing, %d extra; want %d, %d", c.want, c.got, m, e, c.missing, c.extra)
		}
	}
}

func TestPlannedTx(t *testing.T) {
	if got := plannedTx(500, 1, time.Minute); got != 30_000 {
		t.Errorf("500/s for 1m = %d tx", got)
	}
	if got := plannedTx(500, 10, time.Minute); got != 3_000 {
		t.Errorf("500/s for 1m at 10 per tx = %d tx", got)
	}
	if n := producerCount(500, 1); n < 4 || n > 32 {
		t.Errorf("producerCount = %d", n)
	}
}

func TestTrackerFirstAttemptAndLatencies(t *testing.T) {
	tr := newTracker(4)
	tr.committed(0, 2, 10*time.Millisecond) // events 0 and 1, one transaction
	tr.committed(2, 1, 20*time.Millisecond)
	tr.sawHook("a", 0, 30*time.Millisecond)
	tr.sawHook("a", 0, 90*time.Millisecond) // a retry of the same event: not the first attempt
	tr.sawHook("b", 2, 25*time.Millisecond)
	tr.sawHook("c", 99, 25*time.Millisecond) // not ours
	tr.sawSSE(1, 12*time.Millisecond)
	tr.sawSSE(1, 50*time.Millisecond)
	if tr.attempts != 4 || tr.repeated != 1 || tr.hookStray != 1 {
		t.Errorf("attempts %d, repeated %d, stray %d", tr.attempts, tr.repeated, tr.hookStray)
	}
	if s, h := tr.outstanding(0, 4); s != 2 || h != 1 { // event 3 was never committed
		t.Errorf("outstanding = %d SSE, %d webhook; want 2, 1", s, h)
	}
	hook := latencies(tr.commit, tr.hook, 0, 4)
	want := []time.Duration{5 * time.Millisecond, 20 * time.Millisecond, missing}
	if len(hook) != len(want) {
		t.Fatalf("webhook latencies %v, want %v", hook, want)
	}
	for i := range want {
		if hook[i] != want[i] {
			t.Fatalf("webhook latencies %v, want %v", hook, want)
		}
	}
	if p := (latencyPath{lat: hook}); p.missing() != 1 || latCell(percentile(hook, 1)) != "missing" {
		t.Errorf("missing() = %d, max %s", p.missing(), latCell(percentile(hook, 1)))
	}
}

func TestEventsReportVerdicts(t *testing.T) {
	lat := func(ms ...int) []time.Duration {
		var out []time.Duration
		for _, m := range ms {
			out = append(out, time.Duration(m)*time.Millisecond)
		}
		return out
	}
	r := eventsReport{
		cfg:  Config{EventsRate: 500, EventsPhase: time.Minute, EventsPerTx: 1},
		prod: production{planned: 30_000, txs: 30_000, events: 30_000, elapsed: time.Minute},
		paths: []latencyPath{
			{name: "commit → SSE frame received", lat: lat(5, 10, 50), target: targetSSE},
			{name: "commit → first webhook attempt received", lat: append(lat(100, 200), missing), target: targetHook},
		},
	}
	var out bytes.Buffer
	r.write(&out)
	s := out.String()
	for _, want := range []string{
		"| 500.0/s | ≥ 99% of 500/s | PASS |",
		"| commit → SSE p99 | 50.00 ms | < 100.00 ms | PASS |",
		"| commit → first webhook attempt p99 | missing | < 500.00 ms | MISS |",
		"| commit → first webhook attempt received | 2 | 1 |",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q:\n%s", want, s)
		}
	}
	if err := r.failure(); err != nil {
		t.Errorf("failure() = %v", err)
	}
	r.prod.errors = 400 // of 30,400 transactions: 1.3%
	if err := r.failure(); err == nil {
		t.Error("failure() = nil with 1.3% failed transactions")
	}
}

func TestReceiverCertVerifiesFor127001(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "receiver")
	certPath, keyPath, err := WriteReceiverCert(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.LoadX509KeyPair(certPath, keyPath); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(keyPath); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, %v", st.Mode(), err)
	}
	pemBytes, _ := os.ReadFile(certPath)
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pemBytes) {
		t.Fatal("no certificate in the PEM file")
	}
	pair, _ := tls.LoadX509KeyPair(certPath, keyPath)
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if leaf.IsCA {
		t.Error("the receiver certificate is a CA")
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "127.0.0.1"}); err != nil {
		t.Errorf("does not verify for 127.0.0.1: %v", err)
	}
}
