package engine

import (
	"fmt"
	"os"

	"github.com/tailorhq/tailor/rules"
)

// LoadRules loads the rules file at path and, when it is valid, makes it
// the rules in force as SetRules does; otherwise the rules in force stay
// and the error is returned (matching rules.ErrInvalid for invalid rules).
// Either way the reload is counted in the tailor.rules.reloads metric (ok
// or failed). It is safe for concurrent use; the returned Set is the one
// in force and must not be modified.
func (e *Engine) LoadRules(path string) (*rules.Set, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		e.tel.rulesRefused()
		return nil, fmt.Errorf("rules: %w", err)
	}
	return e.ParseRules(path, data)
}

// ParseRules is LoadRules over data already read, named name in error
// positions (rules.Parse): for a caller that reads the file itself, as a
// watcher that waits for a file to stop changing does.
func (e *Engine) ParseRules(name string, data []byte) (*rules.Set, error) {
	s, err := rules.Parse(name, data)
	if err != nil {
		e.tel.rulesRefused()
		return nil, err
	}
	e.SetRules(s)
	return s, nil
}
