package redis_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/tailorhq/tailor/storage"
	"github.com/tailorhq/tailor/storage/redis"
)

// ExampleOpen opens a store on a Redis Cluster (any one node is enough as
// a seed; several survive one being down), waiting for a replica to
// acknowledge every write. It needs a running cluster, so it is compiled
// but not run by go test.
func ExampleOpen() {
	ctx := context.Background()
	s, err := redis.Open(ctx, redis.Options{
		Addrs:        []string{"10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379"},
		Username:     "tailor",
		Password:     "secret",
		KeyPrefix:    "shop:",
		WaitReplicas: 1,
		WaitTimeout:  500 * time.Millisecond,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	v, err := s.Write(ctx, storage.Op{Key: []byte("profile/1"), Value: []byte(`{"plan":"free"}`), IfAbsent: true})
	if errors.Is(err, redis.ErrNotReplicated) {
		log.Printf("written on the primary only: %v", err)
	} else if err != nil {
		log.Fatal(err)
	}
	// Upgrade the plan on condition that nobody wrote the profile since,
	// in this process or another.
	_, err = s.Write(ctx, storage.Op{Key: []byte("profile/1"), Value: []byte(`{"plan":"pro"}`), IfVersion: v})
	if errors.Is(err, storage.ErrConflict) {
		// Someone did, and nothing was written: read it again (Get sees
		// the newer version at once) and recompute.
		log.Print("profile/1 changed meanwhile")
	} else if err != nil {
		log.Fatal(err)
	}
	value, _, err := s.Get(ctx, []byte("profile/1"), nil) // from the client-side cache when warm
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("profile/1 = %s\n", value)
}
