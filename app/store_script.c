/*
 * store_script.c: the Lua scripts of the Redis backend, loaded by SCRIPT
 * LOAD on every new context and run by EVALSHA (store.c).  Each is atomic
 * and touches the keys of one slot.  Every revocation (srev, cutoff, bl)
 * is announced in the same atomic step: the script PUBLISHes
 * "<key> <ttl seconds> <value>" on the revocation channel.
 */
#include "config.h"

#include <stddef.h>

#include "extern.h"
#include "store_int.h"

/*
 * Shared by every session script: KEYS[1] is fa:{U}:sessions, ARGV[1] the
 * prefix fa:{U}: of the user's keys and, in the scripts that revoke, the
 * last ARGV the revocation channel: each revocation is published with the
 * change (PUBLISH touches no key, so the script stays in one slot).
 */
#define LUA_PRELUDE \
	"local p, z, chan = ARGV[1], KEYS[1], ARGV[#ARGV]\n" \
	"local function announce(key, ttl, v)\n" \
	"  redis.call('PUBLISH', chan, key .. ' ' .. ttl .. ' ' .. v)\n" \
	"end\n" \
	"local function revoke(sid, rttl)\n" \
	"  redis.call('DEL', p .. 'sess:' .. sid)\n" \
	"  redis.call('EXPIRE', p .. 'used:' .. sid, rttl)\n" \
	"  redis.call('ZREM', z, sid)\n" \
	"  redis.call('SET', p .. 'srev:' .. sid, '1', 'EX', rttl)\n" \
	"  announce(p .. 'srev:' .. sid, rttl, 1)\n" \
	"end\n" \
	"local function cutoff()\n" \
	"  return tonumber(redis.call('GET', p .. 'cutoff') or '0') or 0\n" \
	"end\n" \
	/* the generation never goes back down, even after its key expired: \
	 * a value once carried by tokens is never handed out again */ \
	"local function raise_cutoff(now_s, rttl)\n" \
	"  local t = redis.call('TIME')\n" \
	"  local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n" \
	"  local c = math.max(cutoff() + 1, ms)\n" \
	"  redis.call('SET', p .. 'cutoff', c, 'EX', rttl)\n" \
	"  announce(p .. 'cutoff', rttl, c)\n" \
	"  return c\n" \
	"end\n" \
	"local function keep_zset(ttl)\n" \
	"  if redis.call('TTL', z) < tonumber(ttl) then\n" \
	"    redis.call('EXPIRE', z, ttl)\n" \
	"  end\n" \
	"end\n"

const char *const store_scripts[SC__MAX] = {
	/*
	 * ARGV: p sid rhash ip ua now_ms ttl max rttl aal chan
	 * -> {cutoff, {revoked}}
	 */
	[SC_CREATE] = (LUA_PRELUDE
	"local sid, now, ttl = ARGV[2], tonumber(ARGV[6]), tonumber(ARGV[7])\n"
	"local max, rttl = tonumber(ARGV[8]), tonumber(ARGV[9])\n"
	"local sk = p .. 'sess:' .. sid\n"
	"redis.call('HSET', sk, 'created', now, 'last', now, 'ip', ARGV[4],"
	" 'ua', ARGV[5], 'cur', ARGV[3], 'par', '', 'rot', 0, 'enc', '',"
	" 'aal', ARGV[10])\n"
	"redis.call('EXPIRE', sk, ttl)\n"
	"redis.call('ZADD', z, now, sid)\n"
	"for _, m in ipairs(redis.call('ZRANGE', z, 0, -1)) do\n"
	"  if redis.call('EXISTS', p .. 'sess:' .. m) == 0 then\n"
	"    redis.call('ZREM', z, m)\n"
	"  end\n"
	"end\n"
	"local revoked = {}\n"
	"while max > 0 and redis.call('ZCARD', z) > max do\n"
	"  local r = redis.call('ZRANGE', z, 0, 1)\n"
	"  local old = r[1]\n"
	"  if old == sid then old = r[2] end\n"
	"  revoke(old, rttl)\n"
	"  revoked[#revoked + 1] = old\n"
	"end\n"
	"keep_zset(ARGV[7])\n"
	"return {cutoff(), revoked}\n"),

	/*
	 * ARGV: p sid presented newhash newenc grace_s ttl now_ms rttl chan
	 * -> {0 ok | 1 grace | 2 reuse | 3 revoked before | 4 unknown, cutoff,
	 * enc, aal}; a session from before aal was kept is aal 1
	 */
	[SC_ROTATE] = (LUA_PRELUDE
	"local sid, pres = ARGV[2], ARGV[3]\n"
	"local grace, ttl = tonumber(ARGV[6]), tonumber(ARGV[7])\n"
	"local now, rttl = tonumber(ARGV[8]), tonumber(ARGV[9])\n"
	"local sk, uk = p .. 'sess:' .. sid, p .. 'used:' .. sid\n"
	"local h = redis.call('HMGET', sk, 'cur', 'par', 'rot', 'enc', 'aal')\n"
	"local aal = h[5] or '1'\n"
	"if not h[1] then\n"
	"  if redis.call('SISMEMBER', uk, pres) == 1 then\n"
	"    return {3, cutoff(), '', aal}\n"
	"  end\n"
	"  return {4, cutoff(), '', aal}\n"
	"end\n"
	"if h[1] == pres then\n"
	/* the arguments as they came: a Lua number would be printed again */
	"  redis.call('SADD', uk, pres)\n"
	"  redis.call('HSET', sk, 'par', pres, 'cur', ARGV[4], 'enc', ARGV[5],"
	" 'rot', ARGV[8], 'last', ARGV[8])\n"
	"  redis.call('EXPIRE', sk, ARGV[7])\n"
	"  redis.call('EXPIRE', uk, ARGV[7])\n"
	"  keep_zset(ARGV[7])\n"
	"  return {0, cutoff(), '', aal}\n"
	"end\n"
	"if h[2] == pres and grace > 0 and"
	" now - (tonumber(h[3]) or 0) <= grace * 1000 then\n"
	"  redis.call('HSET', sk, 'last', ARGV[8])\n"
	"  return {1, cutoff(), h[4] or '', aal}\n"
	"end\n"
	"if h[2] == pres or redis.call('SISMEMBER', uk, pres) == 1 then\n"
	"  revoke(sid, rttl)\n"
	"  return {2, cutoff(), '', aal}\n"
	"end\n"
	"return {4, cutoff(), '', aal}\n"),

	/* ARGV: p sid rttl chan -> 0 revoked | 1 no such session */
	[SC_REVOKE] = (LUA_PRELUDE
	"if redis.call('EXISTS', p .. 'sess:' .. ARGV[2]) == 0 then\n"
	"  redis.call('ZREM', z, ARGV[2])\n"
	"  return 1\n"
	"end\n"
	"revoke(ARGV[2], tonumber(ARGV[3]))\n"
	"return 0\n"),

	/* ARGV: p sid rhash rttl chan -> 0 revoked | 1 no such session/token */
	[SC_REVOKE_REFRESH] = (LUA_PRELUDE
	"local sid, h = ARGV[2], ARGV[3]\n"
	"local s = redis.call('HMGET', p .. 'sess:' .. sid, 'cur', 'par')\n"
	"if not s[1] then return 1 end\n"
	"if s[1] == h or s[2] == h or"
	" redis.call('SISMEMBER', p .. 'used:' .. sid, h) == 1 then\n"
	"  revoke(sid, tonumber(ARGV[4]))\n"
	"  return 0\n"
	"end\n"
	"return 1\n"),

	/* ARGV: p keep_sid|'' now_s rttl chan -> {cutoff, {revoked}} */
	[SC_REVOKE_ALL] = (LUA_PRELUDE
	"local rttl = tonumber(ARGV[4])\n"
	"local revoked = {}\n"
	"for _, m in ipairs(redis.call('ZRANGE', z, 0, -1)) do\n"
	"  if m ~= ARGV[2] then\n"
	/* a session whose key expired already ended: not reported */
	"    if redis.call('EXISTS', p .. 'sess:' .. m) == 1 then\n"
	"      revoked[#revoked + 1] = m\n"
	"    end\n"
	"    revoke(m, rttl)\n"
	"  end\n"
	"end\n"
	"return {raise_cutoff(tonumber(ARGV[3]), rttl), revoked}\n"),

	/* ARGV: p now_s rttl chan -> cutoff */
	[SC_CUTOFF] = (LUA_PRELUDE
	"return raise_cutoff(tonumber(ARGV[2]), tonumber(ARGV[3]))\n"),

	/* ARGV: p -> {sid, created, last, ip, ua, ...} newest first */
	[SC_LIST] = (LUA_PRELUDE
	"local out = {}\n"
	"for _, m in ipairs(redis.call('ZREVRANGE', z, 0, -1)) do\n"
	"  local h = redis.call('HMGET', p .. 'sess:' .. m,"
	" 'created', 'last', 'ip', 'ua')\n"
	"  if h[1] then\n"
	"    out[#out + 1] = m\n"
	"    out[#out + 1] = h[1]\n"
	"    out[#out + 1] = h[2] or h[1]\n"
	"    out[#out + 1] = h[3] or ''\n"
	"    out[#out + 1] = h[4] or ''\n"
	"  else\n"
	"    redis.call('ZREM', z, m)\n"
	"  end\n"
	"end\n"
	"return out\n"),

	/* KEYS[1] fa:{U}:bl:<jti>; ARGV: ttl chan -> 0 */
	[SC_BLACKLIST] = (
	"redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])\n"
	"redis.call('PUBLISH', ARGV[2], KEYS[1] .. ' ' .. ARGV[1] .. ' 1')\n"
	"return 0\n"),

	/* KEYS[1] counter; ARGV: window -> {count, ttl} */
	[SC_RATE_HIT] = (
	"local n = redis.call('INCR', KEYS[1])\n"
	"local t = redis.call('TTL', KEYS[1])\n"
	"if n == 1 or t < 0 then\n"
	"  redis.call('EXPIRE', KEYS[1], ARGV[1])\n"
	"  t = tonumber(ARGV[1])\n"
	"end\n"
	"return {n, t}\n"),

	/*
	 * KEYS counters; ARGV: window, then the limit of each key ->
	 * {0, 0} all counted, or {1, retry}: one is at its limit, none counted
	 */
	[SC_RATE_RESERVE] = (
	"local w, retry = tonumber(ARGV[1]), 0\n"
	"for i, k in ipairs(KEYS) do\n"
	"  local n = tonumber(redis.call('GET', k) or '0') or 0\n"
	"  if n >= tonumber(ARGV[i + 1]) then\n"
	"    local t = redis.call('TTL', k)\n"
	"    if t < 0 then redis.call('EXPIRE', k, w) t = w end\n"
	"    if t > retry then retry = t end\n"
	"  end\n"
	"end\n"
	"if retry > 0 then return {1, retry} end\n"
	"for _, k in ipairs(KEYS) do\n"
	"  if redis.call('INCR', k) == 1 or redis.call('TTL', k) < 0 then\n"
	"    redis.call('EXPIRE', k, w)\n"
	"  end\n"
	"end\n"
	"return {0, 0}\n"),

	/* KEYS counters; ARGV[i] 'del' clears KEYS[i], else gives one back */
	[SC_RATE_RELEASE] = (
	"for i, k in ipairs(KEYS) do\n"
	"  if ARGV[i] == 'del' then redis.call('DEL', k)\n"
	"  elseif (tonumber(redis.call('GET', k) or '0') or 0) > 0 then\n"
	"    redis.call('DECR', k)\n"
	"  end\n"
	"end\n"
	"return 0\n"),

	/* KEYS[1] fa:mfa:<hash>; ARGV: uid ip ua ttl -> 0 */
	[SC_MFA_CREATE] = (
	"redis.call('HSET', KEYS[1], 'uid', ARGV[1], 'ip', ARGV[2],"
	" 'ua', ARGV[3], 'wrong', 0)\n"
	"redis.call('EXPIRE', KEYS[1], ARGV[4])\n"
	"return 0\n"),

	/* KEYS[1] fa:mfa:<hash>; ARGV: max -> -1 gone | wrong codes so far,
	 * the token deleted once they reach max */
	[SC_MFA_WRONG] = (
	"if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end\n"
	"local n = redis.call('HINCRBY', KEYS[1], 'wrong', 1)\n"
	"if n >= tonumber(ARGV[1]) then redis.call('DEL', KEYS[1]) end\n"
	"return n\n"),
};
