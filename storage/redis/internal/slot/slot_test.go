package slot

import "testing"

// TestOf checks the vectors of the Redis Cluster specification (CRC16
// XMODEM of "123456789" is 0x31C3) and the hash-tag rules; redistest's
// TestKeySlot checks Of against CLUSTER KEYSLOT of a real cluster.
func TestOf(t *testing.T) {
	tests := []struct {
		key  string
		want int
	}{
		{"123456789", 0x31c3},
		{"{123456789}", 0x31c3},
		{"x{123456789}y{z}", 0x31c3},
		{"", 0},
		{"{}123456789", Of("{}123456789")}, // empty tag: the whole key
		{"{user1000}.following", Of("user1000")},
		{"foo{}{bar}", Of("foo{}{bar}")},
		{"foo{{bar}}zap", Of("{bar")},
		{"foo{bar}{zap}", Of("bar")},
	}
	for _, tt := range tests {
		if got := Of(tt.key); got != tt.want {
			t.Errorf("Of(%q) = %d, want %d", tt.key, got, tt.want)
		}
	}
	if Of("{}123456789") == Of("123456789") {
		t.Error("an empty hash tag must hash the whole key")
	}
}
