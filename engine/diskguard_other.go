//go:build !unix

package engine

import "errors"

// freeBytes is not implemented off Unix: the guard then lets every write
// through to the store.
func freeBytes(string) (uint64, error) {
	return 0, errors.New("tailor: free space unknown on this platform")
}
