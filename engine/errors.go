package engine

import (
	"errors"
	"fmt"
)

// Sentinel errors. Match them with errors.Is.
var (
	// ErrInvalidInput is matched by every *InputError.
	ErrInvalidInput = errors.New("tailor: invalid input")
	// ErrNotFound is returned when a profile does not exist.
	ErrNotFound = errors.New("tailor: profile not found")
	// ErrClosed is returned by every call after Close.
	ErrClosed = errors.New("tailor: engine closed")
	// ErrOverload is returned when a profile receives more concurrent or
	// per-second requests than the engine admits.
	ErrOverload = errors.New("tailor: profile overloaded")
)

// InputError describes invalid input: Field is a JSON path of the field at
// fault (for example "events[3].timestamp"). It matches ErrInvalidInput.
type InputError struct {
	Field  string
	Reason string
}

func (e *InputError) Error() string {
	return fmt.Sprintf("tailor: invalid input: %s: %s", e.Field, e.Reason)
}

// Is reports whether target is ErrInvalidInput.
func (e *InputError) Is(target error) bool { return target == ErrInvalidInput }

func invalid(field, format string, args ...any) error {
	return &InputError{Field: field, Reason: fmt.Sprintf(format, args...)}
}
