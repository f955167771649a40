package bench

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"
)

// Targets the report checks: the API keeps this share of the raw insert rate, and the server stays
// below this peak resident set.
const (
	targetSingleShare = 0.40
	targetBatchShare  = 0.50
	targetPeakRSS     = 150e6 // bytes
)

// report is everything a run measured, written as Markdown.
type report struct {
	cfg       Config
	env       dbEnv
	phases    []measured
	stored    int64 // rows of the benchmark organization in gps_locations
	warmRows  int64 // rows the warm-ups inserted
	memory    memory
	memoryErr error
	apiRSS    int64 // server VmRSS (kB) right after the last API phase
}

func (r report) phase(id string) (measured, bool) {
	for _, p := range r.phases {
		if p.id == id {
			return p, true
		}
	}
	return measured{}, false
}

// inserted is every row the run inserted, warm-ups included.
func (r report) inserted() int64 {
	n := r.warmRows
	for _, p := range r.phases {
		n += p.rows
	}
	return n
}

func (r report) write(w io.Writer) {
	c := r.cfg
	fmt.Fprintf(w, "### GPS ingest: raw SQL vs HTTP API\n\n")
	fmt.Fprintf(w, "%d CPU, %s/%s, %s; PostgreSQL %s (fsync=%s, synchronous_commit=%s); "+
		"%d workers, %d employees with open sessions; %s per phase after a %s warm-up.\n\n",
		runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), r.env.version, r.env.fsync,
		r.env.syncCommit, c.Concurrency, c.Employees, c.Phase, c.Warmup)
	r.writePhases(w)
	r.writeTargets(w)
	r.writeChecks(w)
}

// writePhases is the table of phases and the note on CPU noise.
func (r report) writePhases(w io.Writer) {
	fmt.Fprintln(w, "| Phase | Path | Tx or req/s | Rows/s | p50 ms | p99 ms | Errors | CPU bench | CPU server | CPU Postgres | CPU other |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, p := range r.phases {
		fmt.Fprintf(w, "| %s | %s | %.0f | %.0f | %s | %s | %s | %s | %s | %s | %s |\n",
			p.id, p.path, p.perSecond(p.ops), p.perSecond(p.rows),
			millis(percentile(p.latencies, 0.50)), millis(percentile(p.latencies, 0.99)),
			errorCell(p.result), core(p.cpu.client), core(p.cpu.server), core(p.cpu.dbs), core(p.cpu.other))
	}
	fmt.Fprintf(w, "\nCPU is in %% of one core (this machine has %d). ", runtime.NumCPU())
	if noisy := r.noisyPhases(); len(noisy) > 0 {
		fmt.Fprintf(w, "**Noisy run:** other processes used more than %.0f%% of a core during %s; "+
			"rerun on a quiet machine before quoting these figures.\n\n", noisyOther*100, strings.Join(noisy, ", "))
	} else {
		fmt.Fprintf(w, "\"CPU other\" (the rest of the machine) stayed below %.0f%% of a core.\n\n", noisyOther*100)
	}
}

// writeTargets is the table of targets with PASS/MISS.
func (r report) writeTargets(w io.Writer) {
	fmt.Fprintln(w, "| Target | Measured | Goal | Result |")
	fmt.Fprintln(w, "|---|---:|---:|---|")
	for _, t := range []struct{ name, api, raw string }{{"single", "B1", "A1"}, {"batch", "B2", "A2"}} {
		goal := targetSingleShare
		if t.name == "batch" {
			goal = targetBatchShare
		}
		api, ok1 := r.phase(t.api)
		raw, ok2 := r.phase(t.raw)
		share := -1.0
		if ok1 && ok2 && raw.rows > 0 {
			share = api.perSecond(api.rows) / raw.perSecond(raw.rows)
		}
		fmt.Fprintf(w, "| API/raw rows/s, %s (%s/%s) | %s | ≥ %.0f%% | %s |\n",
			t.name, t.api, t.raw, percent(share), goal*100, verdict(share >= 0, share >= goal))
	}
	if r.memoryErr != nil {
		fmt.Fprintf(w, "| Server peak RSS (VmHWM) | unknown | < %.0f MB | MISS |\n", targetPeakRSS/1e6)
	} else {
		peak := float64(r.memory.peakKB) * 1024
		fmt.Fprintf(w, "| Server peak RSS (VmHWM; VmRSS %s MB after the API phases) | %.1f MB | < %.0f MB | %s |\n",
			mb(r.apiRSS), peak/1e6, targetPeakRSS/1e6, verdict(true, peak < targetPeakRSS))
	}
	fmt.Fprintln(w)
}

// writeChecks is the row-count check and the first error of each phase.
func (r report) writeChecks(w io.Writer) {
	check := "OK"
	if r.stored != r.inserted() {
		check = "MISMATCH"
	}
	fmt.Fprintf(w, "Row check: gps_locations holds %d rows; the phases inserted %d (%d of them in warm-ups): %s.\n",
		r.stored, r.inserted(), r.warmRows, check)
	if r.memoryErr != nil {
		fmt.Fprintf(w, "\nServer memory unknown: %v\n", r.memoryErr)
	}
	for _, p := range r.phases {
		if p.firstErr != "" {
			fmt.Fprintf(w, "\n%s first error: `%s`\n", p.id, oneLine(p.firstErr, 300))
		}
	}
}

// noisyOther is the share of a core the rest of the machine may use during a phase before the report
// calls the run noisy.
const noisyOther = 0.15

func (r report) noisyPhases() []string {
	var ids []string
	for _, p := range r.phases {
		if p.cpu.other > noisyOther {
			ids = append(ids, p.id)
		}
	}
	return ids
}

// failure is non-nil when a phase failed more than maxErrorShare of its units (or did none at all).
func (r report) failure() error {
	var bad []string
	for _, p := range r.phases {
		if p.ops == 0 || float64(p.errors) > maxErrorShare*float64(p.ops) {
			bad = append(bad, fmt.Sprintf("%s (%d of %d failed)", p.id, p.errors, p.ops))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("more than %.0f%% errors: %s", maxErrorShare*100, strings.Join(bad, ", "))
	}
	return nil
}

func millis(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

func errorCell(r result) string {
	s := fmt.Sprintf("%d", r.errors)
	if r.dups > 0 {
		s += fmt.Sprintf(" (+%d dup)", r.dups)
	}
	return s
}

// core formats a share of one core as a percentage ("n/a" when unknown).
func core(x float64) string {
	if x < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f%%", x*100)
}

func percent(x float64) string {
	if x < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f%%", x*100)
}

func mb(kb int64) string {
	if kb <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f", float64(kb)*1024/1e6)
}

func verdict(known, pass bool) string {
	if known && pass {
		return "PASS"
	}
	return "MISS"
}

// oneLine makes an error body fit a Markdown line: no newlines or backticks, at most n bytes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(strings.ReplaceAll(s, "`", "'")), " ")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}
