package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of utime and stime in /proc/PID/stat (USER_HZ,
// 100 on Linux).
const clockTick = 10 * time.Millisecond

// cpuTime is the CPU time (user + system, every thread) a process used so
// far, or an error where /proc is not available. CPU per invoice tells the
// servers' cost apart from how much of a loaded machine each one got.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields count from the
	// closing parenthesis.
	s := string(b)
	end := strings.LastIndexByte(s, ')')
	if end < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[end+1:])
	// f[0] is field 3 (state): utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	ut, err := strconv.ParseInt(f[11], 10, 64)
	if err != nil {
		return 0, err
	}
	st, err := strconv.ParseInt(f[12], 10, 64)
	if err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * clockTick, nil
}

// cpuMeter samples the CPU time of the server processes (one, or every
// replica of a target) and of this load generator.
type cpuMeter struct {
	servers      []int
	serverBefore []time.Duration
	selfBefore   time.Duration
}

func startCPU(servers []int) cpuMeter {
	m := cpuMeter{servers: servers, serverBefore: make([]time.Duration, len(servers))}
	for i, pid := range servers {
		m.serverBefore[i], _ = cpuTime(pid)
	}
	m.selfBefore, _ = cpuTime(os.Getpid())
	return m
}

// stop returns the CPU time used since start by the servers together and
// by the generator (0 where it could not be read).
func (m cpuMeter) stop() (server, self time.Duration) {
	for i, pid := range m.servers {
		if s, err := cpuTime(pid); err == nil && pid > 0 {
			server += s - m.serverBefore[i]
		}
	}
	if s, err := cpuTime(os.Getpid()); err == nil {
		self = s - m.selfBefore
	}
	return server, self
}

// ioPressure is the share of the last 10 s in which some task waited for
// I/O (/proc/pressure/io, "some avg10"), "?" where unknown. lnd's
// AddInvoice waits for an fsync per invoice, so a busy disk slows the
// baseline far more than lnmuxd, which does no I/O for an invoice.
func ioPressure() string {
	b, err := os.ReadFile("/proc/pressure/io")
	if err != nil {
		return "?"
	}
	for _, f := range strings.Fields(string(b)) {
		if v, ok := strings.CutPrefix(f, "avg10="); ok {
			return v + "%"
		}
	}
	return "?"
}
