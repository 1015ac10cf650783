package redis

import (
	"context"
	"crypto/sha1"
	"encoding/hex"

	"github.com/redis/rueidis"
)

// script is a Lua script run by EVALSHA, falling back to EVAL when the
// server does not have it cached (NOSCRIPT: a new or restarted node, a
// replica just promoted; Redis does not replicate its script cache).
// Every script touches only the keys it is given, all in one slot.
type script struct {
	src string
	sha string
}

func newScript(src string) *script {
	sum := sha1.Sum([]byte(src))
	return &script{src: src, sha: hex.EncodeToString(sum[:])}
}

// cmd builds EVALSHA of the script (or EVAL when sha is false) on keys
// with args.
func (sc *script) cmd(b rueidis.Builder, sha bool, keys []string, args ...string) rueidis.Completed {
	if sha {
		return b.Evalsha().Sha1(sc.sha).Numkeys(int64(len(keys))).Key(keys...).Arg(args...).Build()
	}
	return b.Eval().Script(sc.src).Numkeys(int64(len(keys))).Key(keys...).Arg(args...).Build()
}

// do runs the script with c.Do.
func (sc *script) do(ctx context.Context, c rueidis.Client, keys []string, args ...string) rueidis.RedisResult {
	r := c.Do(ctx, sc.cmd(c.B(), true, keys, args...))
	if noScript(r) {
		r = c.Do(ctx, sc.cmd(c.B(), false, keys, args...))
	}
	return r
}

// noScript reports whether r is Redis's NOSCRIPT error: EVALSHA did not
// run, and EVAL of the same script is safe.
func noScript(r rueidis.RedisResult) bool {
	err, ok := rueidis.IsRedisErr(r.Error())
	return ok && err.IsNoScript()
}

// writeScript applies one storage.Op to KEYS[1], which holds a string: the
// key's version as 16 lowercase hex digits, then the value.
//
//	ARGV[1]  condition: "" none, "a" absent, or the version (16 hex digits)
//	         the key must be at
//	ARGV[2]  "s" set or "d" delete
//	ARGV[3]  the value (set)
//	ARGV[4]  TTL in milliseconds, "0" for none (set)
//
// It returns false (nil) when the condition fails, having written
// nothing; 0 after a delete; the new version after a set. The new version
// is the server's clock in microseconds (TIME), or the old version plus
// one when that is not above it: versions of a live key only grow. SET
// without PX drops an earlier expiry, so a set without TTL needs no
// PERSIST.
var writeScript = newScript(`
local cur = redis.call('GETRANGE', KEYS[1], 0, 15)
local cond = ARGV[1]
if cond == 'a' then
	if cur ~= '' then return false end
elseif cond ~= '' and cur ~= cond then
	return false
end
if ARGV[2] == 'd' then
	redis.call('DEL', KEYS[1])
	return 0
end
local t = redis.call('TIME')
local v = tonumber(t[1]) * 1000000 + tonumber(t[2])
if cur ~= '' then
	local old = tonumber(cur, 16)
	if old ~= nil and old >= v then v = old + 1 end
end
local ver = string.format('%016x', v)
if ARGV[4] ~= '0' then
	redis.call('SET', KEYS[1], ver .. ARGV[3], 'PX', ARGV[4])
else
	redis.call('SET', KEYS[1], ver .. ARGV[3])
end
return ver
`)

// enqueueScript appends ARGV[2] to the stream KEYS[1] with the id 0-n, n
// one above the stream's last id (XADD "0-*"), unless ARGV[1] > 0 and the
// stream already holds that many entries (false). It returns the id.
var enqueueScript = newScript(`
local max = tonumber(ARGV[1])
if max > 0 and redis.call('XLEN', KEYS[1]) >= max then return false end
return redis.call('XADD', KEYS[1], '0-*', 'v', ARGV[2])
`)

// claimScript hands the oldest message of stream KEYS[1] pending in group
// ARGV[1] for at least ARGV[3] ms to consumer ARGV[2] and returns it as
// {id, {field, value}}, or false when none is. XPENDING with IDLE finds
// it however many younger messages are held (XAUTOCLAIM would give up
// after scanning 10 entries per COUNT); XCLAIM's own idle check keeps two
// consumers from both claiming it. A pending id whose entry is gone
// (acknowledged by XACK + XDEL elsewhere) is dropped and the next tried.
var claimScript = newScript(`
for i = 1, 100 do
	local p = redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[3], '-', '+', 1)
	if #p == 0 then return false end
	local m = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], p[1][1])
	if #m > 0 and m[1] then return m[1] end
	redis.call('XACK', KEYS[1], ARGV[1], p[1][1])
end
return false
`)

// ackScript acknowledges message ARGV[2] of stream KEYS[1] in group
// ARGV[1] and deletes it, in one step, so that the stream holds exactly
// the unacknowledged messages (XLEN is the queue's length).
var ackScript = newScript(`
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return redis.call('XDEL', KEYS[1], ARGV[2])
`)

// leaveScript deletes consumer ARGV[2] from group ARGV[1] of stream
// KEYS[1] if it holds no message (deleting a consumer drops its pending
// messages from the group, which must not happen to a held one). It
// returns the number of messages the consumer holds (0 or 1).
var leaveScript = newScript(`
local p = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #p == 0 then redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2]) end
return #p
`)
