package engine_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tailorhq/tailor/engine"
)

var secret = []byte("site-backend-secret")

// untrusted returns a request as the HTTP layer builds it.
func untrusted(evs ...engine.Event) engine.Request {
	return engine.Request{Events: evs, Untrusted: true}
}

func withHash(userID, hash string, traits map[string]any) engine.Event {
	t := map[string]any{engine.UserHashTrait: hash}
	for k, v := range traits {
		t[k] = v
	}
	return identifyEv(userID, t)
}

func TestUserHash(t *testing.T) {
	// Pinned against an independent HMAC-SHA256 implementation:
	// printf %s user-1 | openssl dgst -sha256 -hmac site-backend-secret
	const want = "a5a8ac70fc2822494d65777a48e16563622b08203ff9ff615d3f907236f424bc"
	if got := engine.UserHash(secret, "user-1"); got != want {
		t.Errorf("UserHash = %s, want %s", got, want)
	}
}

// TestIdentityTakeover is the attack: a browser that learned a user id
// identifies with it to be merged into that user's profile and read its
// traits. With a secret configured, an untrusted request must carry the
// user's hash; without it the call fails with ErrIdentityUnverified and
// nothing is written.
func TestIdentityTakeover(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T, opt func(*engine.Options)) (e *env, victimID, attackerID string) {
		e = open(t, planRules, opt)
		victimID = e.identify(t, "", identifyEv("victim", map[string]any{"email": "victim@example.com"})).Profile.ID
		attackerID = e.identify(t, "", page("/")).Profile.ID
		return e, victimID, attackerID
	}
	withSecret := func(o *engine.Options) { o.IdentitySecret = secret }

	refused := []struct {
		name string
		ev   engine.Event
	}{
		{"no hash", identifyEv("victim", nil)},
		{"wrong hash", withHash("victim", strings.Repeat("0", 64), nil)},
		{"hash of another user", withHash("victim", engine.UserHash(secret, "attacker"), nil)},
		{"hash under another secret", withHash("victim", engine.UserHash([]byte("guess"), "victim"), nil)},
		{"truncated hash", withHash("victim", engine.UserHash(secret, "victim")[:32], nil)},
		{"not hex", withHash("victim", "zz"+engine.UserHash(secret, "victim")[2:], nil)},
		{"hash not a string", identifyEv("victim", map[string]any{engine.UserHashTrait: 1.0})},
	}
	for _, tt := range refused {
		t.Run("refused/"+tt.name, func(t *testing.T) {
			e, _, attackerID := setup(t, withSecret)
			before := e.dump(t)
			_, err := e.Identify(ctx, attackerID, untrusted(tt.ev))
			if !errors.Is(err, engine.ErrIdentityUnverified) {
				t.Fatalf("Identify: %v, want ErrIdentityUnverified", err)
			}
			if after := e.dump(t); after != before {
				t.Errorf("a refused identify wrote:\n%s\nwas\n%s", after, before)
			}
		})
	}

	t.Run("verified merge", func(t *testing.T) {
		e, victimID, attackerID := setup(t, withSecret)
		ev := withHash("victim", strings.ToUpper(engine.UserHash(secret, "victim")), map[string]any{"plan": "pro"})
		resp, err := e.Identify(ctx, attackerID, untrusted(ev))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Profile.ID != victimID {
			t.Errorf("merged into %q, want %q", resp.Profile.ID, victimID)
		}
		if _, ok := resp.Profile.Traits[engine.UserHashTrait]; ok {
			t.Errorf("userHash returned as a trait: %v", resp.Profile.Traits)
		}
		if resp.Profile.Traits["plan"] != "pro" {
			t.Errorf("the other traits were not applied: %v", resp.Profile.Traits)
		}
		if strings.Contains(e.dump(t), engine.UserHashTrait) {
			t.Error("userHash was stored")
		}
		// The caller's request is not modified.
		if _, ok := ev.Traits[engine.UserHashTrait]; !ok {
			t.Error("Identify removed userHash from the caller's traits map")
		}
	})

	t.Run("known user without a hash", func(t *testing.T) {
		e, victimID, _ := setup(t, withSecret)
		// A visitor already on their own known profile needs no proof to
		// repeat their user id.
		resp, err := e.Identify(ctx, victimID, untrusted(identifyEv("victim", map[string]any{"k": "v"})))
		if err != nil || resp.Profile.ID != victimID {
			t.Fatalf("Identify = %v, %v", resp, err)
		}
	})

	t.Run("claiming an unknown user id", func(t *testing.T) {
		// Binding a user id no profile has yet also needs the proof:
		// otherwise an attacker could claim it first and be the profile
		// the real user later merges into.
		e, _, attackerID := setup(t, withSecret)
		before := e.dump(t)
		if _, err := e.Identify(ctx, attackerID, untrusted(identifyEv("future-user", nil))); !errors.Is(err, engine.ErrIdentityUnverified) {
			t.Fatalf("Identify: %v, want ErrIdentityUnverified", err)
		}
		if e.dump(t) != before {
			t.Error("a refused claim wrote")
		}
		ev := withHash("future-user", engine.UserHash(secret, "future-user"), nil)
		if _, err := e.Identify(ctx, attackerID, untrusted(ev)); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("identify without a user id", func(t *testing.T) {
		e, _, attackerID := setup(t, withSecret)
		if _, err := e.Identify(ctx, attackerID, untrusted(identifyEv("", map[string]any{"a": "b"}))); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("trusted Go caller", func(t *testing.T) {
		e, victimID, attackerID := setup(t, withSecret)
		resp := e.identify(t, attackerID, identifyEv("victim", nil))
		if resp.Profile.ID != victimID {
			t.Errorf("trusted merge went to %q, want %q", resp.Profile.ID, victimID)
		}
	})

	t.Run("no secret configured", func(t *testing.T) {
		e, victimID, attackerID := setup(t, nil)
		ev := withHash("victim", "anything", nil)
		resp, err := e.Identify(ctx, attackerID, untrusted(ev))
		if err != nil || resp.Profile.ID != victimID {
			t.Fatalf("Identify = %v, %v; without a secret merges are not checked", resp, err)
		}
		if strings.Contains(e.dump(t), engine.UserHashTrait) {
			t.Error("userHash was stored without a secret")
		}
	})
}
