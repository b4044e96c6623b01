"""The login throttle: one atomic check-and-count in Redis before any password is checked.

Two limits, both keyed by the caller's address so that a flood from one address never locks the real
user out from theirs:

- per (user, address) pair: ``max_failures`` attempts, then each further one must wait 2, 4, 8 … s
  (up to ``max_delay``); a correct password resets the pair;
- per address, whatever the user names: a leaky bucket of ``burst`` failed attempts that drains at
  ``per_minute`` (password spraying across many user names).

The check counts the attempt as a failure in the same Lua script (one step, so 60 parallel guesses
cannot all pass a check that comes before the count); a correct password then takes it back, and so
does a check that never ran (the password pool was full). A refused attempt is not counted and its
password never checked. The clock is Redis's, so several
workers agree. Keys hold a hash of the user name, never the name an attacker typed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import redis.asyncio as aioredis

from videohub.errors import RateLimited
from videohub.settings import AuthSettings
from videohub.store import key

# KEYS[1]: the pair's hash {n: attempts counted, until: epoch before which it must wait}
# KEYS[2]: the address's bucket {level: failed attempts in hand, ts: when level was computed}
# ARGV: max_failures, max_delay, window, burst, drain per second
# Returns {1, delay}: allowed (and counted); delay > 0 when this attempt, if it fails, starts a wait.
#         {0, retry_after, "user" | "address"}: refused.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local max_failures = tonumber(ARGV[1])
local max_delay = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local burst = tonumber(ARGV[4])
local drain = tonumber(ARGV[5])
local level = tonumber(redis.call('HGET', KEYS[2], 'level') or '0')
local ts = tonumber(redis.call('HGET', KEYS[2], 'ts') or tostring(now))
level = math.max(0, level - math.max(0, now - ts) * drain)
if level + 1 > burst then
  return {0, math.max(1, math.ceil((level + 1 - burst) / drain)), 'address'}
end
local wait_until = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if now < wait_until then
  return {0, math.max(1, math.ceil(wait_until - now)), 'user'}
end
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
local delay = 0
if n >= max_failures then
  delay = math.min(max_delay, 2 ^ (n - max_failures + 1))
  redis.call('HSET', KEYS[1], 'until', tostring(now + delay))
end
redis.call('EXPIRE', KEYS[1], math.ceil(delay + window))
redis.call('HSET', KEYS[2], 'level', tostring(level + 1), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[2], math.ceil((level + 1) / drain) + 1)
return {1, math.ceil(delay)}
"""

# A correct password: the pair starts afresh and the address gets its attempt back.
_SUCCEED = """
redis.call('DEL', KEYS[1])
local level = tonumber(redis.call('HGET', KEYS[2], 'level') or '0')
if level > 0 then
  redis.call('HSET', KEYS[2], 'level', tostring(math.max(0, level - 1)))
end
return 1
"""

# An attempt let through but never checked (the password pool was full): as if it had not been made.
# Its reservation was allowed, so any wait it set replaced one that was over: removing it restores.
_UNDO = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  local n = redis.call('HINCRBY', KEYS[1], 'n', -1)
  if tonumber(ARGV[1]) > 0 or n <= 0 then
    redis.call('HDEL', KEYS[1], 'until')
  end
end
local level = tonumber(redis.call('HGET', KEYS[2], 'level') or '0')
if level > 0 then
  redis.call('HSET', KEYS[2], 'level', tostring(math.max(0, level - 1)))
end
return 1
"""


@dataclass(frozen=True)
class Attempt:
    """A login attempt the throttle let through (and counted as a failure until it succeeds)."""

    pair_key: str
    address_key: str
    lockout: int
    """Seconds the pair must wait if this attempt fails (0: no wait yet)."""


class LoginThrottle:
    """Counts login attempts per (user, address) and per address in Redis; see the module docstring."""

    def __init__(self, redis: aioredis.Redis, settings: AuthSettings) -> None:
        self._redis = redis
        self._settings = settings
        self._reserve = redis.register_script(_RESERVE)
        self._succeed = redis.register_script(_SUCCEED)
        self._undo = redis.register_script(_UNDO)
        self.refused: dict[str, int] = {"user": 0, "address": 0}
        """Attempts refused without a password check, by limit (for /metrics)."""

    @staticmethod
    def _keys(username: str, address: str) -> tuple[str, str]:
        pair = hashlib.sha256(f"{username}\0{address}".encode()).hexdigest()[:32]
        return key("throttle", "pair", pair), key("throttle", "addr", address)

    async def reserve(self, username: str, address: str) -> Attempt:
        """Let one attempt through (counted), or raise RateLimited with the wait in Retry-After."""
        s = self._settings
        pair_key, address_key = self._keys(username, address)
        drain = s.login_address_per_minute / 60.0
        result = await self._reserve(
            keys=[pair_key, address_key],
            args=[
                s.login_max_failures,
                s.login_max_delay_seconds,
                s.login_window_seconds,
                s.login_address_burst,
                drain,
            ],
        )
        if int(result[0]) != 1:
            which = str(result[2])
            self.refused[which] = self.refused.get(which, 0) + 1
            retry_after = max(1, int(result[1]))
            if which == "address":
                raise RateLimited("too many failed logins from this address; try again later", retry_after)
            raise RateLimited("too many failed logins; try again later", retry_after)
        return Attempt(pair_key, address_key, int(result[1]))

    async def succeeded(self, attempt: Attempt) -> None:
        await self._succeed(keys=[attempt.pair_key, attempt.address_key], args=[])

    async def undo(self, attempt: Attempt) -> None:
        """Take back an attempt whose password was never checked."""
        await self._undo(keys=[attempt.pair_key, attempt.address_key], args=[attempt.lockout])
