package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/tailorhq/tailor/engine"
	"github.com/tailorhq/tailor/storage"
	"github.com/tailorhq/tailor/storage/redis"
)

// redisConfig is what the -redis* flags say: the Redis or Redis Cluster the
// profiles live in, shared by every server started with the same
// addresses and prefix. Empty addrs means the embedded Badger store.
type redisConfig struct {
	addrs       []string
	username    string
	password    string
	tls         bool
	ca          string // PEM file of the CAs to trust, instead of the system's
	serverName  string
	prefix      string
	wait        int
	waitTimeout time.Duration
}

// redisFlags registers the -redis* flags; addrs is parsed by finish.
func (c *redisConfig) flags(fs *flag.FlagSet, addrs *string) {
	fs.StringVar(addrs, "redis", "", "comma-separated Redis addresses (one server, or Redis Cluster seed nodes): keep profiles there instead of in -data, shared by every server pointed at them")
	fs.StringVar(&c.username, "redis-username", "", "Redis ACL user name")
	fs.StringVar(&c.password, "redis-password", "", "Redis password; prefer TAILOR_REDIS_PASSWORD")
	fs.BoolVar(&c.tls, "redis-tls", false, "connect to Redis over TLS")
	fs.StringVar(&c.ca, "redis-tls-ca", "", "PEM file of the certificate authorities that sign the Redis servers' certificates (default: the system's)")
	fs.StringVar(&c.serverName, "redis-tls-server-name", "", "name to verify the Redis servers' certificates against (default: the host of each address)")
	fs.StringVar(&c.prefix, "redis-prefix", redis.DefaultKeyPrefix, "prefix of every Redis key, so several deployments can share one Redis")
	fs.IntVar(&c.wait, "redis-wait", 0, "replicas that must acknowledge every write before it is answered (Redis WAIT; 0: none); see the README on what it does and does not guarantee")
	fs.DurationVar(&c.waitTimeout, "redis-wait-timeout", redis.DefaultWaitTimeout, "how long a write waits for -redis-wait replicas before it fails")
}

// finish parses the address list and checks the combination of flags.
func (c *redisConfig) finish(addrs string, inMemory bool) error {
	for _, a := range strings.Split(addrs, ",") {
		if a = strings.TrimSpace(a); a != "" {
			c.addrs = append(c.addrs, a)
		}
	}
	switch {
	case len(c.addrs) == 0 && (c.tls || c.ca != "" || c.username != "" || c.password != "" || c.wait != 0):
		return fmt.Errorf("-redis-*: given without -redis")
	case len(c.addrs) > 0 && inMemory:
		return fmt.Errorf("-in-memory and -redis: choose one store")
	case c.ca != "" && !c.tls:
		return fmt.Errorf("-redis-tls-ca: given without -redis-tls")
	}
	return nil
}

// open opens the Redis store, or returns nil when no -redis was given.
func (c *redisConfig) open(ctx context.Context) (*redis.Store, error) {
	if len(c.addrs) == 0 {
		return nil, nil
	}
	o := redis.Options{Addrs: c.addrs, Username: c.username, Password: c.password, KeyPrefix: c.prefix,
		WaitReplicas: c.wait, WaitTimeout: c.waitTimeout, ClientName: "tailor-server"}
	if c.tls {
		o.TLS = &tls.Config{ServerName: c.serverName, MinVersion: tls.VersionTLS12}
		if c.ca != "" {
			pem, err := os.ReadFile(c.ca)
			if err != nil {
				return nil, fmt.Errorf("-redis-tls-ca: %w", err)
			}
			o.TLS.RootCAs = x509.NewCertPool()
			if !o.TLS.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("-redis-tls-ca: %s holds no PEM certificate", c.ca)
			}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s, err := redis.Open(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("-redis: %w", err)
	}
	return s, nil
}

// storeHealth is what /healthz reports of the store: its name, and an
// error when it cannot serve (a Redis primary down, a slot unserved).
type storeHealth func(ctx context.Context) (name string, err error)

// healthOf returns the health check of the engine's store s (nil:
// Badger, which lives in this process).
func healthOf(s storage.Store) storeHealth {
	if r, ok := s.(*redis.Store); ok {
		return func(ctx context.Context) (string, error) {
			ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			return "redis", r.Ping(ctx)
		}
	}
	return func(context.Context) (string, error) { return "badger", nil }
}

// useStore sets opts.Store to s when s is not nil.
func useStore(opts *engine.Options, s *redis.Store) {
	if s != nil {
		opts.Store = s
	}
}
