package engine

import "github.com/tailorhq/tailor/rules"

// LoadRules loads the rules file at path (rules.Load) and, when it is
// valid, makes it the rules in force as SetRules does; otherwise the rules
// in force stay and the error is returned (matching rules.ErrInvalid for
// invalid rules). Either way the reload is counted in the
// tailor.rules.reloads metric (ok or failed). It is safe for concurrent use; the returned Set
// is the one in force and must not be modified.
func (e *Engine) LoadRules(path string) (*rules.Set, error) {
	s, err := rules.Load(path)
	if err != nil {
		e.tel.rulesRefused()
		return nil, err
	}
	e.SetRules(s)
	return s, nil
}
