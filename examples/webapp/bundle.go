package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"
)

// Bundle is the file, relative to the web directory, that `npm run build`
// writes: Ninetailed's SDK and web/src/main.js bundled by esbuild.
const Bundle = "dist/sdk.js"

// defaultWebDir is the web directory next to this source file, where `go
// run ./examples/webapp` finds it from any working directory; a binary
// built elsewhere falls back to "web" in the working directory.
func defaultWebDir() string {
	if _, file, _, ok := runtime.Caller(0); ok {
		dir := filepath.Join(filepath.Dir(file), "web")
		if _, err := os.Stat(filepath.Join(dir, "package.json")); err == nil {
			return dir
		}
	}
	return "web"
}

// ensureBundle builds webDir's bundle when it is missing or older than its
// inputs (package-lock.json and src/): `npm ci` when node_modules was not
// installed from the current lock file, then `npm run build`. logf reports
// each step. It fails, saying what to install, when npm is missing.
func ensureBundle(ctx context.Context, webDir string, logf func(format string, args ...any)) error {
	lock := filepath.Join(webDir, "package-lock.json")
	lockInfo, err := os.Stat(lock)
	if err != nil {
		return fmt.Errorf("web directory %s: %w", webDir, err)
	}
	newest, err := newestUnder(filepath.Join(webDir, "src"))
	if err != nil {
		return err
	}
	newest = later(newest, lockInfo.ModTime())
	if pkg, err := os.Stat(filepath.Join(webDir, "package.json")); err == nil {
		newest = later(newest, pkg.ModTime())
	}
	if b, err := os.Stat(filepath.Join(webDir, Bundle)); err == nil && !b.ModTime().Before(newest) {
		return nil
	}

	npm, err := exec.LookPath("npm")
	if err != nil {
		return fmt.Errorf("the browser bundle %s is missing or stale and npm is not installed "+
			"(install Node.js 20+ with npm, or run `npm ci && npm run build` in %s): %w",
			filepath.Join(webDir, Bundle), webDir, err)
	}
	// npm writes node_modules/.package-lock.json after it installed from
	// the lock file; older than the lock means the lock changed since.
	installed, err := os.Stat(filepath.Join(webDir, "node_modules", ".package-lock.json"))
	if err != nil || installed.ModTime().Before(lockInfo.ModTime()) {
		logf("installing the pinned npm packages: npm ci in %s", webDir)
		if err := runNPM(ctx, npm, webDir, "ci", "--include=dev", "--no-audit", "--no-fund", "--loglevel=error"); err != nil {
			return err
		}
	}
	logf("bundling the browser SDK: npm run build in %s", webDir)
	return runNPM(ctx, npm, webDir, "run", "build", "--silent")
}

func runNPM(ctx context.Context, npm, dir string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("npm %v in %s: %w\n%s", args, dir, err, out)
	}
	return nil
}

// newestUnder returns the latest modification time of the files under dir.
func newestUnder(dir string) (time.Time, error) {
	var newest time.Time
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		newest = later(newest, info.ModTime())
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return newest, fmt.Errorf("web sources: %w", err)
	}
	return newest, err
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
