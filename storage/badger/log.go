package badger

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

// LevelBadgerDebug is the slog level Badger's Debugf messages are logged
// at. Badger logs at debug level on every write, so they sit one step below
// slog.LevelDebug and a handler set to LevelDebug does not see them.
const LevelBadgerDebug = slog.LevelDebug - 4

// badgerLogger adapts a *slog.Logger to badger.Logger. Badger is chatty at
// INFO (every compaction, every memtable flush), so its Infof goes to
// slog.LevelDebug and its Debugf to LevelBadgerDebug. Messages are only
// formatted when the handler is enabled for their level.
type badgerLogger struct {
	l *slog.Logger
}

func (b badgerLogger) log(level slog.Level, format string, args []any) {
	ctx := context.Background()
	if !b.l.Enabled(ctx, level) {
		return
	}
	b.l.Log(ctx, level, strings.TrimRight(fmt.Sprintf(format, args...), "\n"), "component", "badger")
}

func (b badgerLogger) Errorf(format string, args ...any) { b.log(slog.LevelError, format, args) }
func (b badgerLogger) Warningf(format string, args ...any) {
	b.log(slog.LevelWarn, format, args)
}
func (b badgerLogger) Infof(format string, args ...any)  { b.log(slog.LevelDebug, format, args) }
func (b badgerLogger) Debugf(format string, args ...any) { b.log(LevelBadgerDebug, format, args) }
