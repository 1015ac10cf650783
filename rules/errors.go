package rules

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// Error is one problem found while loading a rules file: where it is, which
// rule it belongs to and which field is at fault. Every *Error matches
// ErrInvalid with errors.Is.
type Error struct {
	Pos   Pos
	Kind  string // "audience" or "experience"; empty for file-level problems
	Rule  string // id of the audience or experience; empty when unknown
	Field string // field path inside the rule (or inside the file when Rule is empty)
	Msg   string
}

// Error formats e as `file:line:col: audience "id": field: message`.
func (e *Error) Error() string {
	var b strings.Builder
	if e.Pos.File != "" {
		b.WriteString(e.Pos.File)
		b.WriteByte(':')
	}
	if e.Pos.Line > 0 {
		b.WriteString(strconv.Itoa(e.Pos.Line))
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Pos.Column))
		b.WriteByte(':')
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	if e.Rule != "" {
		b.WriteString(e.Kind)
		b.WriteByte(' ')
		b.WriteString(strconv.Quote(e.Rule))
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Is reports whether target is ErrInvalid.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// Errors is every problem found in one rules file, sorted by position.
// Parse and Load return an Errors (never empty) when a file is invalid;
// errors.As finds the first *Error and errors.Is matches ErrInvalid.
type Errors []*Error

// Error joins the messages, one per line.
func (l Errors) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap returns the individual errors.
func (l Errors) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// Is reports whether target is ErrInvalid.
func (l Errors) Is(target error) bool { return target == ErrInvalid && len(l) > 0 }

func (l Errors) sort() {
	slices.SortStableFunc(l, func(a, b *Error) int {
		if c := cmp.Compare(a.Pos.Line, b.Pos.Line); c != 0 {
			return c
		}
		return cmp.Compare(a.Pos.Column, b.Pos.Column)
	})
}
