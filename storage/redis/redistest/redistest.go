// Package redistest starts real Redis servers for tests: a standalone
// redis-server ([Standalone]) or a Redis Cluster of 3 primaries and 3
// replicas ([Cluster]), on free loopback ports, stopped when the test ends.
// Tests of any package use it, for instance
//
//	srv := redistest.Cluster(t)
//	s, err := redis.Open(ctx, redis.Options{Addrs: srv.Addrs, KeyPrefix: redistest.KeyPrefix(t)})
//
// The servers are started by the script cluster.sh beside this file (also
// usable by hand: `bash storage/redis/redistest/cluster.sh start DIR`),
// which records the PIDs it starts and stops only those. Without
// redis-server and redis-cli on PATH the calling test is skipped, or
// fails when the environment variable TAILOR_REQUIRE_REDIS is set (as CI
// sets it).
//
// # Failover
//
// The cluster's nodes time out after 1000 ms, so a primary killed with
// [Servers.KillPrimaryOf] is replaced by its replica within a few seconds;
// [Servers.WaitFailover] polls the cluster until that has happened and
// [Servers.Restart] brings the killed node back, as a replica of its
// successor.
package redistest

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tailorhq/tailor/storage/redis/internal/slot"
)

//go:embed cluster.sh
var script []byte

// RequireEnv is the environment variable that turns a missing redis-server
// from a skip into a failure.
const RequireEnv = "TAILOR_REQUIRE_REDIS"

// startAttempts bounds the retries with fresh ports when a port is taken
// by another process between choosing it and binding it.
const startAttempts = 5

// Servers is a set of redis-server processes started for one test by
// Standalone or Cluster and stopped by the test's cleanup. Its methods are
// safe for concurrent use.
type Servers struct {
	// Addrs are the addresses to give a client: the one server, or every
	// node of the cluster (host:port on 127.0.0.1).
	Addrs []string

	cluster bool
	dir     string // one folder per node, named by port
	script  string // path of cluster.sh
	remove  string // folder the watchdog removes when this process exits (shared servers)

	mu   sync.Mutex
	dead map[string]bool // nodes killed and not restarted
}

// Standalone starts one redis-server (not in cluster mode) for the test.
func Standalone(t testing.TB) *Servers {
	t.Helper()
	return start(t, false)
}

// Cluster starts a Redis Cluster of 3 primaries, each with one replica,
// for the test, and returns once every slot is served and every replica
// is in sync (2–3 s).
func Cluster(t testing.TB) *Servers {
	t.Helper()
	return start(t, true)
}

// shared holds the servers of SharedCluster and SharedStandalone.
var shared struct {
	mu      sync.Mutex
	servers map[bool]*Servers // by cluster
}

// SharedCluster returns a cluster like Cluster's, started by the first
// call in this process and shared by every later one; it stops (and its
// files are removed) about a second after the process exits. It saves the
// start-up time of a cluster per test, for tests that only read and write
// keys: give each its own KeyPrefix, and do not kill, pause or reconfigure
// its nodes (use Cluster for that).
func SharedCluster(t testing.TB) *Servers {
	t.Helper()
	return sharedServers(t, true)
}

// SharedStandalone is SharedCluster for a standalone server.
func SharedStandalone(t testing.TB) *Servers {
	t.Helper()
	return sharedServers(t, false)
}

func sharedServers(t testing.TB, cluster bool) *Servers {
	t.Helper()
	Skip(t)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if s := shared.servers[cluster]; s != nil {
		return s
	}
	root, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		t.Fatal(err)
	}
	s := launch(t, cluster, root, true)
	if shared.servers == nil {
		shared.servers = map[bool]*Servers{}
	}
	shared.servers[cluster] = s
	return s
}

var prefixes atomic.Int64

// KeyPrefix returns a key prefix not returned before in this process, so
// that tests sharing servers do not see each other's keys.
func KeyPrefix(t testing.TB) string {
	return fmt.Sprintf("t%d-%08x:", prefixes.Add(1), rand.Uint32())
}

// Skip skips t (or fails it when TAILOR_REQUIRE_REDIS is set) unless
// redis-server and redis-cli are on PATH. Standalone and Cluster call it.
func Skip(t testing.TB) {
	t.Helper()
	for _, cmd := range []string{"redis-server", "redis-cli", "bash"} {
		if _, err := exec.LookPath(cmd); err != nil {
			if os.Getenv(RequireEnv) != "" {
				t.Fatalf("%s is set but %s is not installed (apt-get install -y redis-server)", RequireEnv, cmd)
			}
			t.Skipf("%s is not installed; the Redis tests need redis-server and redis-cli (apt-get install -y redis-server)", cmd)
		}
	}
}

func start(t testing.TB, cluster bool) *Servers {
	t.Helper()
	Skip(t)
	s := launch(t, cluster, t.TempDir(), false)
	t.Cleanup(func() {
		if out, err := s.run(time.Minute, "stop", s.dir); err != nil {
			t.Errorf("redistest: stop the servers: %v\n%s", err, out)
		}
	})
	return s
}

// launch starts the servers in root, retrying with other ports when one
// is taken. With shared, the script's watchdog removes root after it
// stopped the servers, once this process has exited.
func launch(t testing.TB, cluster bool, root string, shared bool) *Servers {
	t.Helper()
	path := filepath.Join(root, "cluster.sh")
	if err := os.WriteFile(path, script, 0o755); err != nil {
		t.Fatal(err)
	}
	n := 1
	if cluster {
		n = 6
	}
	for attempt := 1; ; attempt++ {
		dir := filepath.Join(root, fmt.Sprintf("servers-%d", attempt))
		ports, err := freePorts(n)
		if err != nil {
			t.Fatal(err)
		}
		s := &Servers{cluster: cluster, dir: dir, script: path, dead: map[string]bool{}}
		if shared {
			s.remove = root
		}
		args := []string{"standalone", dir}
		if cluster {
			args = []string{"start", dir}
		}
		for _, p := range ports {
			args = append(args, strconv.Itoa(p))
			s.Addrs = append(s.Addrs, net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		}
		out, err := s.run(2*time.Minute, args...)
		if err == nil {
			return s
		}
		var exit *exec.ExitError
		if errors.As(err, &exit) && exit.ExitCode() == 3 && attempt < startAttempts {
			continue // a port was taken meanwhile: try others
		}
		t.Fatalf("redistest: start the servers: %v\n%s", err, out)
	}
}

// run runs cluster.sh with args, telling it to stop the servers when this
// process exits.
func (s *Servers) run(timeout time.Duration, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{s.script}, args...)...)
	cmd.Env = append(os.Environ(), "OWNER_PID="+strconv.Itoa(os.Getpid()))
	if s.remove != "" {
		cmd.Env = append(cmd.Env, "OWNER_REMOVE="+s.remove)
	}
	return cmd.CombinedOutput()
}

// freePorts returns n ports of 127.0.0.1 that are free, as is each port
// plus 10000 (a cluster node's bus port). They are chosen at random below
// Linux's ephemeral range (32768+), where outgoing connections do not take
// them; the script reports a port taken in the meantime and start retries.
func freePorts(n int) ([]int, error) {
	var ports []int
	used := map[int]bool{}
	for tries := 0; len(ports) < n; tries++ {
		if tries > 1000 {
			return nil, errors.New("redistest: no free ports found")
		}
		p := 10000 + rand.IntN(12000)
		if used[p] || used[p+10000] || !free(p) || !free(p+10000) {
			continue
		}
		used[p], used[p+10000] = true, true
		ports = append(ports, p)
	}
	return ports, nil
}

func free(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// IsCluster reports whether the servers are a cluster.
func (s *Servers) IsCluster() bool { return s.cluster }

// CLI runs redis-cli against the node at addr with args and returns its
// output, trimmed. Redis errors are part of the output, not err.
func (s *Servers) CLI(addr string, args ...string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "redis-cli", append([]string{"-h", host, "-p", port}, args...)...).Output()
	if err != nil {
		return "", fmt.Errorf("redis-cli %s %s: %w", addr, strings.Join(args, " "), err)
	}
	return string(bytes.TrimSpace(bytes.ReplaceAll(out, []byte("\r"), nil))), nil
}

// PID returns the process id of the node at addr.
func (s *Servers) PID(t testing.TB, addr string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.dir, port(addr), "pid"))
	if err != nil {
		t.Fatalf("redistest: pid of %s: %v", addr, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("redistest: pid of %s: %v", addr, err)
	}
	return pid
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// Kill kills the node at addr with SIGKILL, as a crash would: it writes
// nothing more and answers no one.
func (s *Servers) Kill(t testing.TB, addr string) {
	t.Helper()
	p, err := os.FindProcess(s.PID(t, addr))
	if err == nil {
		err = p.Kill()
	}
	if err != nil {
		t.Fatalf("redistest: kill %s: %v", addr, err)
	}
	s.mu.Lock()
	s.dead[addr] = true
	s.mu.Unlock()
}

// Pause stops the node at addr with SIGSTOP: it holds its connections
// open but reads and answers nothing, as a node stalled by its machine
// would, until Resume. A paused replica falls behind its primary.
func (s *Servers) Pause(t testing.TB, addr string) { s.signal(t, addr, syscall.SIGSTOP) }

// Resume continues a node paused with Pause (SIGCONT).
func (s *Servers) Resume(t testing.TB, addr string) { s.signal(t, addr, syscall.SIGCONT) }

func (s *Servers) signal(t testing.TB, addr string, sig syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(s.PID(t, addr), sig); err != nil {
		t.Fatalf("redistest: signal %v to %s: %v", sig, addr, err)
	}
}

// ReplicasOf returns the addresses of the replicas of the primary at addr.
func (s *Servers) ReplicasOf(t testing.TB, addr string) []string {
	t.Helper()
	nodes, err := s.nodes()
	if err != nil {
		t.Fatal(err)
	}
	id := ""
	for _, n := range nodes {
		if n.addr == addr {
			id = n.id
		}
	}
	var out []string
	for _, n := range nodes {
		if id != "" && n.masterID == id {
			out = append(out, n.addr)
		}
	}
	return out
}

// WaitReplicated waits until the primary at addr has a replica and every
// replica has applied everything the primary had written when it was called (its
// replication offset, INFO replication), so that a write acknowledged
// before survives killing the primary. Replication is asynchronous, and
// WAIT only counts the calling connection's own writes. It polls for at
// most a minute, then fails t.
func (s *Servers) WaitReplicated(t testing.TB, addr string) {
	t.Helper()
	want, err := s.replOffset(addr, "master_repl_offset")
	if err != nil {
		t.Fatal(err)
	}
	var why string
	ok := s.poll(time.Minute, func() bool {
		// Read the replicas again each time: a node that joined as a
		// replica shows in the cluster's view only once gossip spread it.
		replicas := s.ReplicasOf(t, addr)
		if len(replicas) == 0 {
			why = addr + " has no replica yet"
			return false
		}
		for _, r := range replicas {
			got, err := s.replOffset(r, "slave_repl_offset")
			if err != nil || got < want {
				why = fmt.Sprintf("replica %s at offset %d (%v), primary at %d", r, got, err, want)
				return false
			}
		}
		return true
	})
	if !ok {
		t.Fatalf("redistest: the replicas of %s did not catch up within a minute: %s", addr, why)
	}
}

// replOffset reads the replication offset named field from the INFO
// replication of the node at addr.
func (s *Servers) replOffset(addr, field string) (int64, error) {
	out, err := s.CLI(addr, "info", "replication")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(out) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("redistest: no %s in the INFO replication of %s", field, addr)
}

// Restart starts the killed node at addr again, on its port and folder.
// A cluster node rejoins the cluster, as a replica of the node that took
// over its slots; call WaitHealthy to wait for it to be in sync.
func (s *Servers) Restart(t testing.TB, addr string) {
	t.Helper()
	if out, err := s.run(time.Minute, "node", s.dir, port(addr)); err != nil {
		t.Fatalf("redistest: restart %s: %v\n%s", addr, err, out)
	}
	s.mu.Lock()
	delete(s.dead, addr)
	s.mu.Unlock()
}

// live returns the nodes not killed.
func (s *Servers) live() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, a := range s.Addrs {
		if !s.dead[a] {
			out = append(out, a)
		}
	}
	return out
}

// node is one line of CLUSTER NODES.
type node struct {
	id, masterID string // masterID is "-" for a master
	addr         string
	master       bool
	failed       bool
	slots        [][2]int
}

// nodes returns the cluster's nodes as the first live node sees them.
func (s *Servers) nodes() ([]node, error) {
	live := s.live()
	if len(live) == 0 {
		return nil, errors.New("no live node")
	}
	out, err := s.CLI(live[0], "cluster", "nodes")
	if err != nil {
		return nil, err
	}
	var nodes []node
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		n := node{id: f[0], masterID: f[3], addr: f[1]}
		if i := strings.IndexAny(n.addr, "@,"); i >= 0 {
			n.addr = n.addr[:i]
		}
		for _, flag := range strings.Split(f[2], ",") {
			switch flag {
			case "master":
				n.master = true
			case "fail", "fail?":
				n.failed = true
			}
		}
		for _, r := range f[8:] {
			if strings.HasPrefix(r, "[") {
				continue // a slot being migrated
			}
			lo, hi, found := strings.Cut(r, "-")
			a, err1 := strconv.Atoi(lo)
			b := a
			var err2 error
			if found {
				b, err2 = strconv.Atoi(hi)
			}
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("cluster nodes: bad slot range %q", r)
			}
			n.slots = append(n.slots, [2]int{a, b})
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

// KeySlot returns the cluster hash slot of key, as Redis computes it:
// CRC16 (XMODEM) modulo 16384 of the key's hash tag — the bytes between
// its first '{' and the first '}' after it, when there are some — or of
// the whole key. A store key without '{' or '}' has the slot of the Redis
// key the redis store keeps it under (KeyPrefix + "{" + key + "}").
func KeySlot(key string) int { return slot.Of(key) }

// owner returns the master serving slot in nodes, or "".
func owner(nodes []node, slot int) string {
	for _, n := range nodes {
		if !n.master {
			continue
		}
		for _, r := range n.slots {
			if slot >= r[0] && slot <= r[1] {
				return n.addr
			}
		}
	}
	return ""
}

// PrimaryOf returns the address of the primary serving key's slot (see
// KeySlot for store keys). For standalone servers it returns the server.
func (s *Servers) PrimaryOf(t testing.TB, key string) string {
	t.Helper()
	if !s.cluster {
		return s.Addrs[0]
	}
	slot := KeySlot(key)
	nodes, err := s.nodes()
	if err != nil {
		t.Fatal(err)
	}
	addr := owner(nodes, slot)
	if addr == "" {
		t.Fatalf("redistest: no primary serves slot %d", slot)
	}
	return addr
}

// SlotOwners returns, for each of the 16384 slots, the address of the
// primary serving it ("" for a slot no primary serves). For standalone
// servers every slot is the server's.
func (s *Servers) SlotOwners(t testing.TB) []string {
	t.Helper()
	out := make([]string, slot.Count)
	if !s.cluster {
		for i := range out {
			out[i] = s.Addrs[0]
		}
		return out
	}
	nodes, err := s.nodes()
	if err != nil {
		t.Fatal(err)
	}
	for i := range out {
		out[i] = owner(nodes, i)
	}
	return out
}

// Primaries returns the addresses of the cluster's primaries that serve
// slots (the server, for standalone servers).
func (s *Servers) Primaries(t testing.TB) []string {
	t.Helper()
	if !s.cluster {
		return s.Addrs[:1]
	}
	nodes, err := s.nodes()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range nodes {
		if n.master && len(n.slots) > 0 {
			out = append(out, n.addr)
		}
	}
	return out
}

// KillPrimaryOf kills (SIGKILL) the primary serving key's slot and
// returns its address.
func (s *Servers) KillPrimaryOf(t testing.TB, key string) string {
	t.Helper()
	addr := s.PrimaryOf(t, key)
	s.Kill(t, addr)
	return addr
}

// WaitFailover waits until key's slot is served by a primary that was not
// killed and every live node reports the cluster ok, and returns that
// primary. It polls the cluster for at most a minute, then fails t.
func (s *Servers) WaitFailover(t testing.TB, key string) string {
	t.Helper()
	slot := KeySlot(key)
	var why string
	ok := s.poll(time.Minute, func() bool {
		nodes, err := s.nodes()
		if err != nil {
			why = err.Error()
			return false
		}
		addr := owner(nodes, slot)
		s.mu.Lock()
		dead := s.dead[addr]
		s.mu.Unlock()
		if addr == "" || dead {
			why = fmt.Sprintf("slot %d is served by %q, killed: %v", slot, addr, dead)
			return false
		}
		if why = s.clusterOK(false); why != "" {
			return false
		}
		why = addr
		return true
	})
	if !ok {
		t.Fatalf("redistest: no failover of slot %d within a minute: %s", slot, why)
	}
	return why
}

// WaitHealthy waits until every node is live and reports the cluster ok
// with every slot served, and every primary has an online replica. It
// polls for at most a minute, then fails t.
func (s *Servers) WaitHealthy(t testing.TB) {
	t.Helper()
	if !s.cluster {
		return
	}
	var why string
	if !s.poll(time.Minute, func() bool { why = s.clusterOK(true); return why == "" }) {
		t.Fatalf("redistest: the cluster is not healthy after a minute: %s", why)
	}
}

// clusterOK returns "" when every live node reports cluster_state:ok with
// every slot served and, with replicas, when every node is live and each
// primary has an online replica; otherwise why not.
func (s *Servers) clusterOK(replicas bool) string {
	live := s.live()
	if replicas && len(live) != len(s.Addrs) {
		return fmt.Sprintf("%d of %d nodes live", len(live), len(s.Addrs))
	}
	for _, a := range live {
		info, err := s.CLI(a, "cluster", "info")
		if err != nil {
			return err.Error()
		}
		if !strings.Contains(info, "cluster_state:ok\n") || !strings.Contains(info, "cluster_slots_ok:16384\n") {
			return a + " reports " + strings.ReplaceAll(info, "\n", " ")
		}
		if !replicas {
			continue
		}
		repl, err := s.CLI(a, "info", "replication")
		if err != nil {
			return err.Error()
		}
		switch {
		case strings.Contains(repl, "role:master\n"):
			if !strings.Contains(repl, "state=online") {
				return a + " is a primary without an online replica"
			}
		case !strings.Contains(repl, "master_link_status:up"):
			return a + " is a replica not in sync"
		}
	}
	return ""
}

// poll calls cond every 50 ms until it returns true, for at most d.
func (s *Servers) poll(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// IgnoreLeaks are the goleak options a package testing against these
// servers passes to goleak.VerifyTestMain: two rueidis goroutines outlive
// a closed client. When a topology refresh drops connections (after a
// failover, or right after connecting, when it drops seed addresses it saw
// as replicas still loading), the cluster client closes them 5 s later
// from a goroutine of its own that Close does not wait for (rueidis
// cluster.go, _refresh). And a lazy refresh (after a MOVED reply or a
// failed connection) sleeps a random delay of up to about a second in a
// goroutine before it refreshes, which Close does not stop either
// (cluster.go lazyRefresh, singleflight.go DelayDo); seen once in three
// runs of the package under -race.
var IgnoreLeaks = []goleak.Option{
	goleak.IgnoreAnyFunction("github.com/redis/rueidis.(*clusterClient)._refresh.func2"),
	goleak.IgnoreAnyFunction("github.com/redis/rueidis.(*call).DelayDo.func1"),
}
