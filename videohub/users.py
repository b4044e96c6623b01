"""Users, their hashed passwords and bearer tokens, and the login rate limit — all in Redis.

Passwords are hashed with argon2id. Tokens are 32 random bytes; only their SHA-256 is stored
(a token is high-entropy, so a fast hash is the right tool), with a Redis TTL as expiry.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import time
from datetime import UTC, datetime

import redis.asyncio as aioredis
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from videohub.errors import Conflict, InvalidField, NotFound, RateLimited, Unauthorized
from videohub.models import Role, User
from videohub.settings import AuthSettings
from videohub.store import key


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class UserStore:
    """Users (``vh:user:<name>`` hashes, ``vh:users`` set) and their tokens (``vh:token:<sha256>``)."""

    def __init__(self, redis: aioredis.Redis, settings: AuthSettings, line_ids: list[str]) -> None:
        self._redis = redis
        self._settings = settings
        self._line_ids = line_ids
        self._hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost, memory_cost=settings.argon2_memory_kib
        )
        # Verifying against this keeps a login for an unknown user as slow as one with a wrong password.
        self._dummy_hash = self._hasher.hash("not-a-real-password")

    # -- users -----------------------------------------------------------------------------------
    def _check(self, password: str, role: Role, line: str | None) -> None:
        if len(password) < self._settings.min_password_length:
            raise InvalidField(
                ("body", "password"),
                f"password must be at least {self._settings.min_password_length} characters",
            )
        if role == "line_admin":
            if line is None:
                raise InvalidField(("body", "line"), "a line_admin needs a line")
            if line not in self._line_ids:
                raise InvalidField(
                    ("body", "line"), f"unknown line {line!r}; known: {', '.join(self._line_ids)}"
                )
        elif line is not None:
            raise InvalidField(("body", "line"), f"role {role} is not bound to a line; leave line empty")

    async def create(self, username: str, password: str, role: Role, line: str | None = None) -> User:
        self._check(password, role, line)
        pw_hash = await asyncio.to_thread(self._hasher.hash, password)
        now = time.time()
        added = await self._redis.sadd(key("users"), username)
        if not added:
            raise Conflict(f"user {username!r} already exists")
        await self._redis.hset(
            key("user", username),
            mapping={"role": role, "line": line or "", "pw": pw_hash, "created": f"{now:.3f}"},
        )
        return User(username=username, role=role, line=line, created_at=datetime.fromtimestamp(now, UTC))

    async def get(self, username: str) -> User | None:
        data = await self._redis.hgetall(key("user", username))
        if not data:
            return None
        return User(
            username=username,
            role=data["role"],
            line=data.get("line") or None,
            created_at=datetime.fromtimestamp(float(data["created"]), UTC),
        )

    async def list(self) -> list[User]:
        names = sorted(await self._redis.smembers(key("users")))
        users = [await self.get(name) for name in names]
        return [u for u in users if u is not None]

    async def has_admin(self) -> bool:
        return any(u.role == "admin" for u in await self.list())

    async def delete(self, username: str) -> User:
        user = await self.get(username)
        if user is None:
            raise NotFound(f"user {username!r} not found")
        await self.revoke_tokens(username)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(key("user", username))
            pipe.srem(key("users"), username)
            await pipe.execute()
        return user

    async def set_password(self, username: str, password: str) -> None:
        user = await self.get(username)
        if user is None:
            raise NotFound(f"user {username!r} not found")
        self._check(password, user.role, user.line)
        pw_hash = await asyncio.to_thread(self._hasher.hash, password)
        await self._redis.hset(key("user", username), "pw", pw_hash)
        await self.revoke_tokens(username)

    async def verify(self, username: str, password: str) -> User | None:
        stored = await self._redis.hget(key("user", username), "pw")
        try:
            await asyncio.to_thread(self._hasher.verify, stored or self._dummy_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        return await self.get(username) if stored else None

    # -- tokens ----------------------------------------------------------------------------------
    async def issue_token(self, user: User) -> tuple[str, datetime]:
        token = secrets.token_urlsafe(32)
        ttl = self._settings.token_ttl_seconds
        expires = time.time() + ttl
        digest = _token_digest(token)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(key("token", digest), json.dumps({"u": user.username, "exp": expires}), ex=ttl)
            pipe.sadd(key("user", user.username, "tokens"), digest)
            pipe.expire(key("user", user.username, "tokens"), ttl)
            await pipe.execute()
        return token, datetime.fromtimestamp(expires, UTC)

    async def user_for_token(self, token: str) -> User | None:
        raw = await self._redis.get(key("token", _token_digest(token)))
        if raw is None:
            return None
        data = json.loads(raw)
        if data["exp"] < time.time():
            return None
        return await self.get(data["u"])

    async def refresh_token(self, token: str, grace_seconds: int = 60) -> tuple[str, datetime, User] | None:
        """A fresh token for the holder of a valid ``token``; the old one ends ``grace_seconds`` later.

        Long-running pages (the wall's display runs for weeks) renew before their token expires
        instead of sending someone to log in on the big screen. The grace lets requests and the
        WebSocket that still carry the old token finish or reconnect with the new one.
        """
        user = await self.user_for_token(token)
        if user is None:
            return None
        new, expires = await self.issue_token(user)
        digest_key = key("token", _token_digest(token))
        ttl = await self._redis.ttl(digest_key)
        if ttl < 0 or ttl > grace_seconds:
            await self._redis.expire(digest_key, grace_seconds)
        return new, expires, user

    async def revoke_token(self, token: str) -> None:
        await self._redis.delete(key("token", _token_digest(token)))

    async def revoke_tokens(self, username: str) -> None:
        digests = await self._redis.smembers(key("user", username, "tokens"))
        keys = [key("token", d) for d in digests]
        await self._redis.delete(key("user", username, "tokens"), *keys)

    # -- login with a rate limit -----------------------------------------------------------------
    async def login(self, username: str, password: str, address: str) -> tuple[str, datetime, User]:
        """Check the password, counting failures per user and per address; raise 429 when over the limit."""
        window = self._settings.login_window_seconds
        limit = self._settings.login_max_failures
        counters = [key("loginfail", "user", username), key("loginfail", "addr", address)]
        counts = await self._redis.mget(counters)
        if any(int(c or 0) >= limit for c in counts):
            ttl = max([await self._redis.ttl(k) for k in counters] + [1])
            raise RateLimited("too many failed logins; try again later", retry_after=ttl)
        user = await self.verify(username, password)
        if user is None:
            async with self._redis.pipeline(transaction=True) as pipe:
                for counter in counters:
                    pipe.incr(counter)
                    pipe.expire(counter, window, nx=True)
                await pipe.execute()
            raise Unauthorized("wrong username or password")
        await self._redis.delete(counters[0])
        token, expires = await self.issue_token(user)
        return token, expires, user
