package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// These tests cover the pure parts (fixes, ownership, statistics, report); make bench runs the rest.

func TestPercentile(t *testing.T) {
	var lat []time.Duration
	for i := 1; i <= 100; i++ {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}, {0.001, time.Millisecond}} {
		if got := percentile(lat, c.p); got != c.want {
			t.Errorf("percentile(%v) = %v, want %v", c.p, got, c.want)
		}
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("percentile of nothing = %v", got)
	}
}

func TestOwnedIsAPartition(t *testing.T) {
	f := &fleet{}
	for i := range 10 {
		f.members = append(f.members, &member{index: i})
	}
	seen := map[int]int{}
	for w := range 3 {
		for _, m := range f.owned(w, 3) {
			seen[m.index]++
		}
	}
	if len(seen) != 10 {
		t.Fatalf("owned covers %d members, want 10", len(seen))
	}
	for i, n := range seen {
		if n != 1 {
			t.Errorf("member %d owned by %d workers", i, n)
		}
	}
}

func TestNextFixStaysInsideTheSession(t *testing.T) {
	now := time.Now()
	m := &member{sessionID: uuid.New(), checkinAt: now.Add(-3 * fixStep)}
	prev := m.checkinAt
	for range 2 {
		fx, err := m.nextFix(now)
		if err != nil {
			t.Fatal(err)
		}
		if !fx.recordedAt.After(prev) || !fx.recordedAt.Before(now) {
			t.Fatalf("recorded_at %v not in (%v, %v)", fx.recordedAt, prev, now)
		}
		prev = fx.recordedAt
	}
	if _, err := m.nextFix(now); err == nil {
		t.Fatal("a fix at now was handed out")
	}
}

func TestPointJSON(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	b := append([]byte{'{'}, appendPointFields(nil, fix{recordedAt: at, lat: 12.9, lon: 77.5, accuracy: 5, seq: 7})...)
	b = append(b, '}')
	var got struct {
		Latitude, Longitude, Accuracy float64
		RecordedAt                    time.Time `json:"recorded_at"`
		SequenceNumber                int       `json:"sequence_number"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if got.Latitude != 12.9 || got.Longitude != 77.5 || got.Accuracy != 5 || !got.RecordedAt.Equal(at) || got.SequenceNumber != 7 {
		t.Fatalf("decoded %+v from %s", got, b)
	}
}

func TestReadProcOfSelf(t *testing.T) {
	// The benchmark reads /proc (Linux only, like the machines it runs on).
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Fatalf("no /proc: %v", err)
	}
	if st, ok := readProcStat(os.Getpid()); !ok || st.state == 'Z' || st.ppid != os.Getppid() {
		t.Errorf("readProcStat(self) = %+v, %v", st, ok)
	}
	if !running(os.Getpid()) || running(1<<22+1) {
		t.Error("running() is wrong about this process or a pid that cannot exist")
	}
	if m, err := readMemory(os.Getpid()); err != nil || m.peakKB <= 0 || m.rssKB <= 0 {
		t.Errorf("readMemory(self) = %+v, %v", m, err)
	}
}

func TestReportVerdicts(t *testing.T) {
	res := func(rows int64) result {
		return result{ops: rows, rows: rows, elapsed: time.Second, latencies: []time.Duration{time.Millisecond}}
	}
	r := report{
		cfg: Config{Concurrency: 1, Employees: 1, Phase: time.Second},
		phases: []measured{
			{phase{id: "A1"}, res(1000)}, {phase{id: "B1"}, res(500)},
			{phase{id: "A2"}, res(1000)}, {phase{id: "B2"}, res(400)},
		},
		stored: 2900, memory: memory{peakKB: 40_000},
	}
	var out bytes.Buffer
	r.write(&out)
	s := out.String()
	for _, want := range []string{"| 50% | ≥ 40% | PASS |", "| 40% | ≥ 50% | MISS |", "41.0 MB | < 150 MB | PASS", ": OK."} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q:\n%s", want, s)
		}
	}
	if err := r.failure(); err != nil {
		t.Errorf("failure() = %v for a run without errors", err)
	}
	r.phases[1].errors = 6 // of 500 ops: 1.2%
	if err := r.failure(); err == nil || !strings.Contains(err.Error(), "B1") {
		t.Errorf("failure() = %v, want B1 named", err)
	}
}

// The ingest comparison's baseline is the fixes' trigger of 000006, taken whole from the migration.
func TestPlainFixesTriggerIsTheMigrations(t *testing.T) {
	def, err := plainFixesTrigger()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(def, "CREATE OR REPLACE FUNCTION app.gps_locations_after_insert()") ||
		!strings.HasSuffix(def, "$$") || strings.Contains(def, "CREATE TRIGGER") || !strings.Contains(def, "recalculate_session") {
		t.Fatalf("the baseline trigger: %q", def)
	}
}

// The collector takes what the SDK's OTLP/HTTP exporter sends, as the traced server sends it, and counts a
// trace's spans towards its root whichever export brings them first.
func TestCollectorCountsTheSpansOfTheRootsTraces(t *testing.T) {
	col, err := startCollector("127.0.0.1:0", tracedRoute)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(col.close)
	ctx := context.Background()
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL("http://"+col.addr+"/v1/traces"))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp)) // one export per span: the child comes first
	tr := tp.Tracer("test")
	for _, name := range []string{tracedRoute, tracedRoute, "GET /ready"} {
		rctx, root := tr.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer))
		_, child := tr.Start(rctx, "batch", trace.WithSpanKind(trace.SpanKindClient))
		child.End()
		root.End()
	}
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	s := col.stats()
	if s.exports != 6 || s.rejected != 0 || s.spans != 6 || s.rootTraces != 2 || s.rootSpans != 4 ||
		s.byName["batch"] != 3 || s.byName[tracedRoute] != 2 {
		t.Fatalf("stats %+v", s)
	}

	resp, err := http.Post("http://"+col.addr+"/v1/traces", "application/x-protobuf", strings.NewReader("not protobuf"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || col.stats().rejected != 1 {
		t.Fatalf("garbage: HTTP %d, stats %+v", resp.StatusCode, col.stats())
	}
}

func TestTracingReportVerdicts(t *testing.T) {
	res := func(ops int64, cpu float64) result {
		return result{ops: ops, rows: ops, elapsed: time.Second, latencies: []time.Duration{time.Millisecond},
			cpu: cpuUse{server: cpu, client: 0.1, dbs: 0.5, other: 0}}
	}
	r := tracingReport{
		phases: []tracingPhase{
			{measured{phase{id: "off1"}, res(1000, 0.5)}, false}, {measured{phase{id: "on1"}, res(930, 0.6)}, true},
			{measured{phase{id: "on2"}, res(800, 0.6)}, true}, {measured{phase{id: "off2"}, res(1100, 0.5)}, false},
			{measured{phase{id: "off3"}, res(990, 0.5)}, false}, {measured{phase{id: "on3"}, res(950, 0.6)}, true},
		},
		sent: 1000, col: collectorStats{rootTraces: 1000, rootSpans: 2000, spans: 2003, byName: map[string]int64{"batch": 1001}},
		stored: 5770, inserted: 5770,
	}
	var out bytes.Buffer
	r.write(&out)
	s := out.String()
	// medians 930 on, 1000 off; the server's CPU per request 500 µs off, 645 µs on (0.6 core at 930/s)
	for _, want := range []string{"(medians: 930 ÷ 1000) | 0.930 | ≥ 0.900 | PASS |", "| 2.000 | ≥ 2 | PASS |",
		"per request 500 → 645 µs", ": OK."} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q:\n%s", want, s)
		}
	}
	if err := r.failure(); err != nil {
		t.Errorf("failure() = %v for a run without errors", err)
	}
	r.col = collectorStats{}
	if err := r.failure(); err == nil {
		t.Error("failure() = nil although no traced span arrived")
	}
}
