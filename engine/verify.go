package engine

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
)

// Identity verification. Without it, anyone who knows (or guesses) a user
// id can send an identify event with it from a browser, be merged into that
// user's profile and receive its traits. With Options.IdentitySecret set,
// an untrusted request (Request.Untrusted, set by the HTTP layer) may bind
// a user id to the profile it is on, merge into that user's profile or
// continue on it only if the identify event proves it comes from the site's
// backend: traits.userHash = hex(HMAC-SHA256(IdentitySecret, userId)), the
// convention of in-app messaging tools. The site computes the hash on its
// server, where the secret lives, and renders it into the page.
//
// userHash is a proof, not a trait: Identify strips it from every identify
// event before applying traits, with or without a secret, so it is never
// stored or returned.

// UserHashTrait is the trait key carrying the identity proof.
const UserHashTrait = "userHash"

// ErrIdentityUnverified is returned (HTTP 403 ERR_IDENTITY_UNVERIFIED) when
// an untrusted request would bind a user id to a profile, or reach the
// profile of a known user, without a valid traits.userHash. Nothing is
// written.
var ErrIdentityUnverified = errors.New("tailor: identity not verified: traits.userHash is missing or wrong for the userId")

// UserHash returns the identity proof for userID under secret: hex-encoded
// HMAC-SHA256(secret, userID). Site backends compute it (in any language)
// and pass it to the browser as traits.userHash. It is safe for concurrent
// use.
func UserHash(secret []byte, userID string) string {
	return hex.EncodeToString(userMAC(secret, userID))
}

func userMAC(secret []byte, userID string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(userID))
	return m.Sum(nil)
}

// takeProofs strips traits.userHash from the identify events of evs and
// reports whether one of the identify events naming userID carried a valid
// proof under secret (false when secret is empty). Events that carry a
// userHash are replaced by copies with a copied traits map, so the
// caller's Request is never modified.
func takeProofs(evs []event, secret []byte, userID string) (verified bool) {
	for i := range evs {
		ev := evs[i].Event
		if ev.Type != EventIdentify {
			continue
		}
		h, ok := ev.Traits[UserHashTrait]
		if !ok {
			continue
		}
		if s, isString := h.(string); isString && len(secret) > 0 && ev.UserID == userID && userID != "" {
			// Hex of either case; hmac.Equal compares in constant time.
			got, err := hex.DecodeString(s)
			if err == nil && hmac.Equal(got, userMAC(secret, userID)) {
				verified = true
			}
		}
		cp := *ev
		cp.Traits = maps.Clone(ev.Traits)
		delete(cp.Traits, UserHashTrait)
		evs[i].Event = &cp
	}
	return verified
}

// checkBatchProofs is the all-or-nothing form of the check for
// IdentifyBatch: an untrusted batch, with a secret configured, is refused
// before anything is written unless every identify event naming a userId
// carries that user's valid userHash. It is stricter than Identify (which
// lets a profile repeat the user id it already has without a proof), so
// that no group can fail verification after earlier groups were written.
func (e *Engine) checkBatchProofs(req *Request) error {
	if !req.Untrusted || len(e.opts.IdentitySecret) == 0 {
		return nil
	}
	for i := range req.Events {
		ev := &req.Events[i]
		if ev.Type != EventIdentify || ev.UserID == "" {
			continue
		}
		s, _ := ev.Traits[UserHashTrait].(string)
		got, err := hex.DecodeString(s)
		if err != nil || !hmac.Equal(got, userMAC(e.opts.IdentitySecret, ev.UserID)) {
			return fmt.Errorf("%w (events[%d])", ErrIdentityUnverified, i)
		}
	}
	return nil
}

// checkIdentity is called under the profile locks when the request would
// bind userID to the profile it is on or move to userID's profile: an
// untrusted request needs a verified proof when a secret is configured.
func (e *Engine) checkIdentity(req *Request) error {
	if !req.Untrusted || len(e.opts.IdentitySecret) == 0 || req.identityVerified {
		return nil
	}
	return ErrIdentityUnverified
}
