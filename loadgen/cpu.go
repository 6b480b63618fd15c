package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"time"
)

// defaultClockTicks is CLK_TCK on Linux when getconf cannot tell.
const defaultClockTicks = 100

// cpuMeter reads the CPU time of server processes from /proc/PID/stat.
type cpuMeter struct {
	pids  []int
	ticks int64 // clock ticks per second
}

// cpuSample is one process's utime+stime in clock ticks, or why it could
// not be read.
type cpuSample struct {
	ticks int64
	err   error
}

// newCPUMeter checks that every pid can be read now; ticks is CLK_TCK.
func newCPUMeter(pids []int, ticks int64) (*cpuMeter, error) {
	for _, pid := range pids {
		if _, err := readCPUTicks(pid); err != nil {
			return nil, err
		}
	}
	return &cpuMeter{pids: pids, ticks: ticks}, nil
}

// clockTicks returns `getconf CLK_TCK`, or 100 (Linux's value).
func clockTicks(ctx context.Context) int64 {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "getconf", "CLK_TCK").Output()
	if err != nil {
		return defaultClockTicks
	}
	n, err := strconv.ParseInt(string(bytes.TrimSpace(out)), 10, 64)
	if err != nil || n <= 0 {
		return defaultClockTicks
	}
	return n
}

// sample reads every process now.
func (m *cpuMeter) sample() []cpuSample {
	s := make([]cpuSample, len(m.pids))
	for i, pid := range m.pids {
		s[i].ticks, s[i].err = readCPUTicks(pid)
	}
	return s
}

// report turns two samples into per-process and total CPU milliseconds,
// per call when calls > 0.
func (m *cpuMeter) report(before, after []cpuSample, calls int64) *CPU {
	c := &CPU{ClockTicks: m.ticks, Processes: make([]ProcessCPU, len(m.pids))}
	perCall := func(v float64) float64 {
		if calls == 0 {
			return 0
		}
		return v / float64(calls)
	}
	for i, pid := range m.pids {
		p := ProcessCPU{PID: pid}
		switch {
		case before[i].err != nil:
			p.Error = before[i].err.Error()
		case after[i].err != nil:
			p.Error = after[i].err.Error()
		default:
			p.CPUMS = float64(after[i].ticks-before[i].ticks) * 1000 / float64(m.ticks)
			p.CPUMSPerCall = perCall(p.CPUMS)
			c.TotalMS += p.CPUMS
		}
		c.Processes[i] = p
	}
	c.TotalMSPerCall = perCall(c.TotalMS)
	return c
}

// readCPUTicks returns utime+stime of process pid, in clock ticks.
func readCPUTicks(pid int) (int64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("read CPU time of pid %d: %w", pid, err)
	}
	return parseStat(data)
}

// parseStat extracts utime+stime (fields 14 and 15) from a /proc/PID/stat
// line. The command name (field 2) is in parentheses and may itself hold
// spaces and parentheses, so fields are counted from the last ')'.
func parseStat(data []byte) (int64, error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("unexpected /proc stat line %q", data)
	}
	// After ")": field 3 (state) onwards; utime is field 14, stime 15.
	f := bytes.Fields(data[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("unexpected /proc stat line %q", data)
	}
	utime, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	stime, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unexpected /proc stat times %q %q", f[11], f[12])
	}
	return utime + stime, nil
}
