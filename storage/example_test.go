package storage_test

import (
	"context"
	"fmt"
	"log"

	"github.com/tailorhq/tailor/storage"
)

func ExampleOpenBadger() {
	// On disk, set Dir (and SyncWrites for durable writes) instead.
	s, err := storage.OpenBadger(storage.BadgerOptions{InMemory: true})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	ctx := context.Background()
	err = s.Apply(ctx, []storage.Op{
		{Key: []byte("profile/1"), Value: []byte(`{"plan":"pro"}`)},
		{Key: []byte("profile/2"), Value: []byte(`{"plan":"free"}`)},
		{Key: []byte("alias/user-42"), Value: []byte("1")},
	})
	if err != nil {
		log.Fatal(err)
	}

	var buf []byte // reused across Gets
	buf, err = s.Get(ctx, []byte("alias/user-42"), buf)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("user-42 is profile %s\n", buf)

	err = s.Scan(ctx, []byte("profile/"), func(key, value []byte) error {
		fmt.Printf("%s = %s\n", key, value)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// user-42 is profile 1
	// profile/1 = {"plan":"pro"}
	// profile/2 = {"plan":"free"}
}
