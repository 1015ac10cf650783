package engine

import (
	"context"
	"errors"
	"io"

	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/storage"
)

// Engine is an open tailor engine. It is safe for concurrent use.
type Engine struct {
	opts  Options
	store storage.Store
}

var errTODO = errors.New("tailor: not implemented yet")

// Open opens (creating if needed) an engine storing its profiles in dir.
func Open(dir string, opts *Options) (*Engine, error) { return nil, errTODO }

// Close waits for in-flight calls, stops background work and closes the
// store. It is safe to call twice; calls after Close return ErrClosed.
func (e *Engine) Close() error { return errTODO }

// Identify applies req to the profile profileID (created when unknown or
// empty), evaluates audiences and experiences, persists the profile unless
// req.Preflight, and returns the result.
func (e *Engine) Identify(ctx context.Context, profileID string, req Request) (*Response, error) {
	return nil, errTODO
}

// Get returns the profile profileID (following aliases) with its current
// evaluation. It writes nothing. A missing profile gives ErrNotFound.
func (e *Engine) Get(ctx context.Context, profileID string) (*Response, error) { return nil, errTODO }

// Delete removes the profile profileID and all its aliases.
func (e *Engine) Delete(ctx context.Context, profileID string) error { return errTODO }

// SetRules atomically replaces the rules in force; nil means none.
func (e *Engine) SetRules(s *rules.Set) {}

// Rules returns the rules in force.
func (e *Engine) Rules() *rules.Set { return nil }

// Backup writes a consistent snapshot of the whole store to w.
func (e *Engine) Backup(ctx context.Context, w io.Writer) error { return errTODO }

// Restore loads a snapshot written by Backup.
func (e *Engine) Restore(ctx context.Context, r io.Reader) error { return errTODO }

// Profiles calls fn for every stored profile, in id order.
func (e *Engine) Profiles(ctx context.Context, fn func(*Profile) error) error { return errTODO }

// Export writes every profile as one JSON object per line (NDJSON).
func (e *Engine) Export(ctx context.Context, w io.Writer) error { return errTODO }
