package bench

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Linux-only process figures from /proc: CPU time of the three parties (this process, the server, the
// Postgres cluster) and the server's memory. Every reader degrades to "unknown" instead of failing.

// userHZ is the unit of the CPU times in /proc/<pid>/stat (USER_HZ, fixed at 100 in the Linux ABI).
const userHZ = 100

// procStat is what the report needs from /proc/<pid>/stat.
type procStat struct {
	state    byte // R, S, D, Z (exited, not yet reaped), ...
	ppid     int
	cpu      time.Duration // utime + stime
	children time.Duration // cutime + cstime: children already exited and reaped
}

func readProcStat(pid int) (procStat, bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return procStat{}, false
	}
	// The command name (field 2) is in parentheses and may contain anything: parse after the last ')'.
	s := string(b)
	k := strings.LastIndexByte(s, ')')
	if k < 0 {
		return procStat{}, false
	}
	f := strings.Fields(s[k+1:]) // f[0] is field 3 (state)
	if len(f) < 15 {
		return procStat{}, false
	}
	n := func(i int) int64 { v, _ := strconv.ParseInt(f[i], 10, 64); return v }
	ticks := func(a, b int) time.Duration { return time.Duration(n(a)+n(b)) * time.Second / userHZ }
	return procStat{state: f[0][0], ppid: int(n(1)), cpu: ticks(11, 12), children: ticks(13, 14)}, true
}

// running reports whether pid is a live process (not gone, not a zombie); true when pid is 0 (unknown).
func running(pid int) bool {
	if pid == 0 {
		return true
	}
	st, ok := readProcStat(pid)
	return ok && st.state != 'Z' && st.state != 'X'
}

// cpuProbe samples CPU time consumed so far by this process, the server and the Postgres cluster
// (postmaster, its live children, and the children it has reaped).
type cpuProbe struct {
	server     int // 0 = unknown
	postmaster int // 0 = unknown
}

// cpuSample is the CPU time consumed up to a moment; negative means unknown. busy is the whole
// machine's (all processes and the kernel).
type cpuSample struct {
	at                        time.Time
	client, server, dbs, busy time.Duration
}

func (p cpuProbe) sample() cpuSample {
	s := cpuSample{at: time.Now(), client: -1, server: -1, dbs: -1, busy: machineBusy()}
	if st, ok := readProcStat(os.Getpid()); ok {
		s.client = st.cpu
	}
	if p.server > 0 {
		if st, ok := readProcStat(p.server); ok {
			s.server = st.cpu
		}
	}
	if p.postmaster > 0 {
		s.dbs = clusterCPU(p.postmaster)
	}
	return s
}

// clusterCPU adds up the postmaster and its children; -1 when the postmaster is gone.
func clusterCPU(postmaster int) time.Duration {
	pm, ok := readProcStat(postmaster)
	if !ok {
		return -1
	}
	total := pm.cpu + pm.children
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if st, ok := readProcStat(pid); ok && st.ppid == postmaster {
			total += st.cpu
		}
	}
	return total
}

// machineBusy is the CPU time all processors spent not idle since boot (first line of /proc/stat:
// everything but idle and iowait); -1 when unknown.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return -1
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return -1
	}
	var busy int64
	for i, v := range f[1:] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return -1
		}
		if i >= 8 { // guest and guest_nice are already counted in user and nice
			break
		}
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return time.Duration(busy) * time.Second / userHZ
}

// cpuUse is the CPU each party used during an interval, as a share of one core (1.0 = one core busy);
// negative means unknown. other is what the rest of the machine used: other processes, and kernel work
// not charged to a process.
type cpuUse struct{ client, server, dbs, other float64 }

func cpuBetween(a, b cpuSample) cpuUse {
	wall := b.at.Sub(a.at).Seconds()
	share := func(x, y time.Duration) float64 {
		if x < 0 || y < 0 || wall <= 0 {
			return -1
		}
		return (y - x).Seconds() / wall
	}
	u := cpuUse{client: share(a.client, b.client), server: share(a.server, b.server), dbs: share(a.dbs, b.dbs),
		other: share(a.busy, b.busy)}
	if u.other >= 0 && u.client >= 0 && u.server >= 0 && u.dbs >= 0 {
		u.other = max(0, u.other-u.client-u.server-u.dbs)
	} else {
		u.other = -1
	}
	return u
}

// memory is a process's peak and current resident set, in kB as /proc reports them (VmHWM, VmRSS).
type memory struct{ peakKB, rssKB int64 }

func readMemory(pid int) (memory, error) {
	if pid <= 0 {
		return memory{}, fmt.Errorf("no server pid given")
	}
	fh, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return memory{}, err
	}
	defer fh.Close()
	var m memory
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		switch {
		case err != nil:
		case name == "VmHWM":
			m.peakKB = kb
		case name == "VmRSS":
			m.rssKB = kb
		}
	}
	if m.peakKB == 0 {
		return memory{}, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
	}
	return m, sc.Err()
}
