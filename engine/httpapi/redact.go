package httpapi

import "github.com/tailorhq/tailor/engine"

// redact removes Options.RedactTraits from the profiles in data, the
// value an endpoint returned. The engine's responses are owned by the
// caller, so their trait maps may be modified.
func (h *handler) redact(data any) {
	if len(h.opts.RedactTraits) == 0 {
		return
	}
	switch d := data.(type) {
	case *engine.Response:
		h.redactProfile(d.Profile)
	case batchResponse:
		for _, p := range d.Profiles {
			h.redactProfile(p)
		}
	case *engine.Explanation:
		h.redactExplanation(d) // admin.go
	}
}

func (h *handler) redactProfile(p *engine.Profile) {
	if p == nil {
		return
	}
	for _, k := range h.opts.RedactTraits {
		delete(p.Traits, k)
	}
}
