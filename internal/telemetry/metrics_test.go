package telemetry

import (
	"net/http"
	"testing"
	"time"
)

// The metrics have no switch, so make bench's tracing section measures both arms with them on; these
// benchmarks give their share instead: what a single-fix POST /locations pays for them, as the access log
// and the handler observe it (the in-flight gauge up and down, the request counter and the latency
// histogram by route, the fixes counter).
//
//	go test -run '^$' -bench Observe ./internal/telemetry/
func observeFix(m *Metrics) {
	m.Started()
	m.Observe(http.MethodPost, "/locations", http.StatusCreated, 7*time.Millisecond, false, "")
	m.LocationsStored.Inc()
}

func BenchmarkObserveRequest(b *testing.B) {
	m := New()
	b.ReportAllocs()
	for b.Loop() {
		observeFix(m)
	}
}

// BenchmarkObserveRequestParallel observes from every core at once, as concurrent requests do: they share
// the same series, so their atomic updates contend.
func BenchmarkObserveRequestParallel(b *testing.B) {
	m := New()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			observeFix(m)
		}
	})
}
