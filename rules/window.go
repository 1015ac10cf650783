package rules

import (
	"errors"
	"path"
	"strconv"
	"strings"
)

// maxWindowMillis bounds windows to 100 years so now-window never overflows.
const maxWindowMillis = 100 * 365 * 24 * 3600 * 1000

// noWindow is the window value meaning "all time".
const noWindow = -1

// errWindow explains the window syntax; callers add the window at fault.
var errWindow = errors.New(`want a positive count and a unit m, h, d or w, like "30d"`)

// parseWindow parses a window like "90m", "24h", "30d" or "2w" into
// milliseconds.
func parseWindow(s string) (int64, error) {
	if len(s) < 2 {
		return 0, errWindow
	}
	var unit int64
	switch s[len(s)-1] {
	case 'm':
		unit = 60 * 1000
	case 'h':
		unit = 3600 * 1000
	case 'd':
		unit = 24 * 3600 * 1000
	case 'w':
		unit = 7 * 24 * 3600 * 1000
	default:
		return 0, errWindow
	}
	digits := s[:len(s)-1]
	if strings.TrimLeft(digits, "0123456789") != "" {
		return 0, errWindow
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n <= 0 || n > maxWindowMillis/unit {
		return 0, errWindow
	}
	return n * unit, nil
}

// isGlob reports whether p holds path.Match metacharacters.
func isGlob(p string) bool { return strings.ContainsAny(p, `*?[\`) }

// checkGlob reports whether p is a well-formed path.Match pattern.
func checkGlob(p string) error {
	if _, err := path.Match(p, ""); err != nil {
		return errors.New("malformed path.Match pattern")
	}
	return nil
}

// sinceMillis is the start of a window ending at nowMilli; noWindow means
// all time.
func sinceMillis(nowMilli, window int64) int64 {
	if window < 0 {
		return minInt64
	}
	return nowMilli - window
}

const minInt64 = -1 << 63

// countEvents returns the occurrences of event name within window of now.
func countEvents(env *Env, name string, window int64) int64 {
	return countEventsAt(env, env.nowMilli(), name, window)
}

func countEventsAt(env *Env, nowMilli int64, name string, window int64) int64 {
	h := env.Events[name]
	if h == nil {
		return 0
	}
	return h.CountSince(sinceMillis(nowMilli, window))
}

// countViews returns the views of pages matching pattern (an exact path or a
// path.Match glob) within window of now.
func countViews(env *Env, pattern string, window int64) int64 {
	return countViewsAt(env, env.nowMilli(), pattern, isGlob(pattern), window)
}

func countViewsAt(env *Env, nowMilli int64, pattern string, glob bool, window int64) int64 {
	since := sinceMillis(nowMilli, window)
	if h := env.Views[pattern]; h != nil || !glob {
		return h.CountSince(since)
	}
	var n int64
	if prefix, ok := trailingStar(pattern); ok {
		for p, h := range env.Views {
			// path.Match's '*' matches any run of bytes but '/'.
			if strings.HasPrefix(p, prefix) && strings.IndexByte(p[len(prefix):], '/') < 0 {
				n += h.CountSince(since)
			}
		}
		return n
	}
	for p, h := range env.Views {
		if ok, _ := path.Match(pattern, p); ok {
			n += h.CountSince(since)
		}
	}
	return n
}

// trailingStar returns the literal part of a glob that is a literal
// followed by one '*' (the common "/docs/*"), which matches without
// path.Match.
func trailingStar(pattern string) (string, bool) {
	lit, ok := strings.CutSuffix(pattern, "*")
	return lit, ok && !isGlob(lit)
}
