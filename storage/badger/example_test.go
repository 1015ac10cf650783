package badger_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/tailorhq/tailor/storage"
	"github.com/tailorhq/tailor/storage/badger"
)

func ExampleOpen() {
	// On disk, set Dir (and SyncWrites for durable writes) instead.
	s, err := badger.Open(badger.Options{InMemory: true})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()

	v, err := s.Write(ctx, storage.Op{Key: []byte("profile/1"), Value: []byte(`{"plan":"free"}`), IfAbsent: true})
	if err != nil {
		log.Fatal(err)
	}
	// Upgrade the plan on condition that nobody wrote the profile since.
	_, err = s.Write(ctx, storage.Op{Key: []byte("profile/1"), Value: []byte(`{"plan":"pro"}`), IfVersion: v})
	if err != nil {
		log.Fatal(err)
	}
	// A second write based on the same read conflicts and writes nothing.
	_, err = s.Write(ctx, storage.Op{Key: []byte("profile/1"), Value: []byte(`{"plan":"stale"}`), IfVersion: v})
	fmt.Println("stale write:", errors.Is(err, storage.ErrConflict))

	value, _, err := s.Get(ctx, []byte("profile/1"), nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("profile/1 = %s\n", value)
	// Output:
	// stale write: true
	// profile/1 = {"plan":"pro"}
}
