package main

import "github.com/tailorhq/tailor/engine"

// configureLocator sets opts.Locator from the configuration. No GeoIP
// reader is built in yet, so IP lookups stay disabled.
func configureLocator(cfg *config, opts *engine.Options) error { return nil }
