package main

import (
	"log/slog"

	"github.com/tailorhq/tailor/engine"
	"github.com/tailorhq/tailor/engine/geoip"
)

// openLocator opens the GeoIP database of -geoip (when set) as
// opts.Locator. The returned DB (nil without -geoip) reopens its file when
// it is replaced; the caller closes it after the engine.
func openLocator(cfg *config, opts *engine.Options, log *slog.Logger) (*geoip.DB, error) {
	if cfg.geoip == "" {
		return nil, nil
	}
	db, err := geoip.Open(cfg.geoip, geoip.WithLogger(log))
	if err != nil {
		return nil, err
	}
	info, err := db.Info()
	if err != nil {
		db.Close()
		return nil, err
	}
	log.Info("geoip database opened", "file", info.Path, "type", info.DatabaseType,
		"built", info.BuildTime, "languages", info.Languages)
	opts.Locator = db
	return db, nil
}
