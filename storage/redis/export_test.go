package redis

import (
	"context"
	"crypto/tls"
	"net"
)

// SetDial makes the stores opened with o connect through dial, for tests
// that watch the connections.
func SetDial(o *Options, dial func(ctx context.Context, addr string, d *net.Dialer, c *tls.Config) (net.Conn, error)) {
	o.dial = dial
}
