package bench

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"sync"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// collector is the tracing section's local OpenTelemetry collector: an OTLP/HTTP receiver (POST
// /v1/traces, http/protobuf) that decodes every export, counts its spans by name and by trace, and answers
// 200 with an empty ExportTraceServiceResponse, as a collector does when it accepted everything. It runs
// inside ftbench, so its decoding shares the machine with the load, as an agent on the host would.
type collector struct {
	srv  *http.Server
	addr string // where it listens
	root string // name of the server spans whose traces are the measured requests' ("POST /locations")

	mu        sync.Mutex
	st        collectorStats
	traces    map[[16]byte]traceTally
	lastSpans time.Time // when the last span arrived
}

// traceTally is what the collector knows of one trace: its spans so far, and whether its root is a
// measured request's server span.
type traceTally struct {
	spans  int32
	rooted bool
}

// collectorStats is what the collector received so far.
type collectorStats struct {
	exports, rejected int64            // export requests accepted, and refused (not decodable)
	bytes             int64            // their bodies, as sent (compressed or not)
	spans             int64            // every span received
	byName            map[string]int64 // spans by name
	rootTraces        int64            // traces whose root is a server span named root
	rootSpans         int64            // the spans of those traces, the root included
}

// maxExport caps an export's body (the SDK's batches of 512 spans are a few hundred kB).
const maxExport = 32 << 20

// startCollector listens on addr (host:port, loopback) and serves until close.
func startCollector(addr, root string) (*collector, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("collector: %w", err)
	}
	c := &collector{addr: ln.Addr().String(), root: root, traces: map[[16]byte]traceTally{}, st: collectorStats{byName: map[string]int64{}}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", c.export)
	c.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = c.srv.Serve(ln) }()
	return c, nil
}

func (c *collector) close() { _ = c.srv.Close() }

// export is POST /v1/traces: 400 for a body that is not an ExportTraceServiceRequest in protobuf.
func (c *collector) export(w http.ResponseWriter, r *http.Request) {
	n, req, err := readExport(r)
	if err != nil {
		c.mu.Lock()
		c.st.rejected++
		c.mu.Unlock()
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.count(n, req)
	answer, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(answer)
}

// readExport decodes an export request's body (gzip when the exporter compresses), returning its size as
// sent.
func readExport(r *http.Request) (int64, *coltracepb.ExportTraceServiceRequest, error) {
	if ct := r.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		return 0, nil, fmt.Errorf("content type %q, want application/x-protobuf", ct)
	}
	cr := &countingReader{r: io.LimitReader(r.Body, maxExport)}
	var body io.Reader = cr
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(cr)
		if err != nil {
			return 0, nil, err
		}
		body = io.LimitReader(zr, maxExport)
	default:
		return 0, nil, fmt.Errorf("content encoding %q", enc)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return 0, nil, err
	}
	if len(b) == 0 {
		return 0, nil, errors.New("empty export")
	}
	req := &coltracepb.ExportTraceServiceRequest{}
	if err := proto.Unmarshal(b, req); err != nil {
		return 0, nil, err
	}
	return cr.n, req, nil
}

// count adds an export's spans. A trace's spans may arrive in several exports (a child ends, and is
// exported, before its parent), so they count towards its root whichever comes first.
func (c *collector) count(n int64, req *coltracepb.ExportTraceServiceRequest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.st.exports++
	c.st.bytes += n
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				c.st.spans++
				c.st.byName[s.GetName()]++
				c.lastSpans = time.Now()
				var id [16]byte
				copy(id[:], s.GetTraceId())
				t := c.traces[id]
				t.spans++
				switch {
				case t.rooted:
					c.st.rootSpans++
				case len(s.GetParentSpanId()) == 0 && s.GetKind() == tracepb.Span_SPAN_KIND_SERVER && s.GetName() == c.root:
					t.rooted = true
					c.st.rootTraces++
					c.st.rootSpans += int64(t.spans)
				}
				c.traces[id] = t
			}
		}
	}
}

// stats is a copy of what the collector received so far.
func (c *collector) stats() collectorStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.st
	s.byName = maps.Clone(c.st.byName)
	return s
}

// drain waits until the collector has the server spans of want requests, or no span has arrived for
// quiet (the batch span processor exports what it holds at least that often), or limit has passed; it
// returns how long it waited.
func (c *collector) drain(want int64, quiet, limit time.Duration) time.Duration {
	start := time.Now()
	for time.Since(start) < limit {
		c.mu.Lock()
		done := c.st.rootTraces >= want || time.Since(c.lastSpans) > quiet
		c.mu.Unlock()
		if done {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Since(start)
}
