package rules

import "errors"

// Temporary placeholders so the engine compiles while the loader is written.
// The rules work replaces this whole file.

type program struct{}

// Parse parses, validates and compiles a rules file. name is the file name
// used in error positions; the format is JSON when the first non-space byte
// is '{', YAML otherwise.
func Parse(name string, data []byte) (*Set, error) { return nil, errors.New("rules: not implemented") }

// Load reads and parses the rules file at path.
func Load(path string) (*Set, error) { return nil, errors.New("rules: not implemented") }

// Match evaluates every audience over env and stores the outcome in
// matched[i] for s.Audiences[i]; len(matched) must be len(s.Audiences).
func (s *Set) Match(env *Env, matched []bool) error { return nil }
