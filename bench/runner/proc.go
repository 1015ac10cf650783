package runner

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/tailorhq/tailor/bench/report"
)

// cpuModel returns the "model name" of /proc/cpuinfo (what lscpu shows),
// or "" where there is none.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// memory reads the process's resident set (VmRSS), its anonymous and
// file-backed parts (RssAnon, RssFile) and its peak (VmHWM) from
// /proc/self/status, and the Go heap in use.
func memory() report.Memory {
	var m report.Memory
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.HeapInuse = ms.HeapInuse
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return m
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		var dst *int64
		switch k {
		case "VmRSS":
			dst = &m.RSSBytes
		case "VmHWM":
			dst = &m.PeakRSSBytes
		case "RssAnon":
			dst = &m.RSSAnonBytes
		case "RssFile":
			dst = &m.RSSFileBytes
		default:
			continue
		}
		f := strings.Fields(v)
		if len(f) >= 1 {
			if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil {
				*dst = kb * 1024
			}
		}
	}
	return m
}

// diskUsage is the space a file takes on disk (blocks), falling back to
// its size.
func diskUsage(info os.FileInfo) int64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return info.Size()
}
