"""Users, their hashed passwords and bearer tokens, and password checks under the login throttle.

Passwords are hashed with argon2id on a small pool of their own (``videohub.passwords``), and every
check passes the throttle first (``videohub.login_throttle``). Tokens are 32 random bytes; only their
SHA-256 is stored (a token is high-entropy, so a fast hash is the right tool), with a Redis TTL as
expiry.

Each login starts a lineage, ``vh:login:<id>``: the digests of the tokens that login has had, by the
time they were issued. A token renewed by refresh belongs to the same login, so what a token started
(a viewing session, a /ws) lives while any token of its login is valid, and ends when the login's
newest token is logged out or expires, or the user's tokens are revoked (password change, deletion).
Logging out a token also ends the login's older tokens (one still in its grace minute), never a
newer one: a superseded token that is logged out is only that token ending early.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import redis.asyncio as aioredis
from argon2 import PasswordHasher
from redis.exceptions import WatchError

from videohub.errors import Conflict, InvalidField, NotFound, Unavailable
from videohub.login_throttle import LoginThrottle
from videohub.models import USERNAME, Role, User
from videohub.passwords import PasswordPool
from videohub.settings import AuthSettings
from videohub.store import key

USERS = key("users")


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class TokenRef:
    """What a session keeps of the token that started it: its digest and its login, never the token."""

    digest: str
    login: str | None
    """The lineage; None for a token issued before lineages existed (it stands alone)."""


@dataclass(frozen=True)
class LoginCheck:
    """The outcome of one password check the throttle let through."""

    user: User | None
    reason: Literal["ok", "wrong_password", "unknown_user"]
    lockout: int = 0
    """Seconds this (user, address) must now wait before its next attempt (0: none)."""


def audit_name(username: str) -> str:
    """A login name as the audit trail may keep it: a well-formed user name, never arbitrary input."""
    return username if USERNAME.match(username) else "(invalid name)"


class UserStore:
    """Users (``vh:user:<name>`` hashes, ``vh:users`` set), their tokens (``vh:token:<sha256>``) and
    logins (``vh:login:<id>``). Owns the password pool: ``close()`` stops its threads."""

    def __init__(self, redis: aioredis.Redis, settings: AuthSettings, line_ids: list[str]) -> None:
        self._redis = redis
        self._settings = settings
        self._line_ids = line_ids
        hasher = PasswordHasher(time_cost=settings.argon2_time_cost, memory_cost=settings.argon2_memory_kib)
        self._pool = PasswordPool(hasher, workers=settings.argon2_workers, queue=settings.argon2_queue)
        self.throttle = LoginThrottle(redis, settings)
        self.verifications = 0
        """Password checks done (for /metrics): refused attempts never reach one."""
        # Verifying against this keeps a login for an unknown user as slow as one with a wrong password.
        self._dummy_hash = hasher.hash("not-a-real-password")

    def close(self) -> None:
        self._pool.close()

    @property
    def busy_refusals(self) -> int:
        """Logins refused because the password pool was full."""
        return self._pool.refused

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

    async def _hash(self, password: str) -> str:
        with self._pool.admit() as slot:
            return await slot.hash(password)

    async def create(self, username: str, password: str, role: Role, line: str | None = None) -> User:
        self._check(password, role, line)
        pw_hash = await self._hash(password)
        now = time.time()
        added = await self._redis.sadd(USERS, username)
        if not added:
            raise Conflict(f"user {username!r} already exists")
        await self._redis.hset(
            key("user", username),
            mapping={"role": role, "line": line or "", "pw": pw_hash, "created": f"{now:.3f}"},
        )
        return User(username=username, role=role, line=line, created_at=datetime.fromtimestamp(now, UTC))

    @staticmethod
    def _user(username: str, data: dict[str, Any]) -> User:
        return User(
            username=username,
            role=data["role"],
            line=data.get("line") or None,
            created_at=datetime.fromtimestamp(float(data["created"]), UTC),
        )

    async def get(self, username: str) -> User | None:
        data = await self._redis.hgetall(key("user", username))
        return self._user(username, data) if data else None

    async def list(self) -> list[User]:
        names = sorted(await self._redis.smembers(USERS))
        users = [await self.get(name) for name in names]
        return [u for u in users if u is not None]

    async def has_admin(self) -> bool:
        return any(u.role == "admin" for u in await self.list())

    async def delete(self, username: str) -> User:
        """Remove a user and revoke their tokens; the last admin cannot be removed (409).

        The admin count and the removal are one transaction (WATCH on the users set, which every
        creation and removal changes), so two admins removed at once cannot both go.
        """
        ukey = key("user", username)
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(USERS, ukey)
                    data = await pipe.hgetall(ukey)
                    if not data:
                        raise NotFound(f"user {username!r} not found")
                    user = self._user(username, data)
                    if user.role == "admin":
                        admins = 0
                        for name in await pipe.smembers(USERS):
                            admins += await pipe.hget(key("user", name), "role") == "admin"
                        if admins <= 1:
                            raise Conflict(
                                f"{username!r} is the last admin and cannot be removed; add an admin first"
                            )
                    pipe.multi()
                    pipe.delete(ukey)
                    pipe.srem(USERS, username)
                    await pipe.execute()
                    break
                except WatchError:
                    continue  # a user was added or removed meanwhile: count again
        await self.revoke_tokens(username)
        return user

    async def set_password(self, username: str, password: str) -> None:
        user = await self.get(username)
        if user is None:
            raise NotFound(f"user {username!r} not found")
        self._check(password, user.role, user.line)
        pw_hash = await self._hash(password)
        await self._redis.hset(key("user", username), "pw", pw_hash)
        await self.revoke_tokens(username)

    # -- password checks -------------------------------------------------------------------------
    async def check_login(self, username: str, password: str, address: str) -> LoginCheck:
        """Check a password from ``address``. Before any check: RateLimited (429) when the throttle
        refuses, Unavailable (503) when too many checks are running. A correct password resets the
        (user, address) throttle."""
        # The throttle first: one address's flood is refused there (429) and never fills the pool
        # that everybody's logins share.
        attempt = await self.throttle.reserve(username, address)
        try:
            slot = self._pool.admit()
        except Unavailable:
            await self.throttle.undo(attempt)
            raise
        with slot:
            stored = await self._redis.hget(key("user", username), "pw")
            self.verifications += 1
            ok = await slot.verify(stored or self._dummy_hash, password)
        if not stored:
            return LoginCheck(None, "unknown_user", attempt.lockout)
        if not ok:
            return LoginCheck(None, "wrong_password", attempt.lockout)
        user = await self.get(username)
        if user is None:  # removed while its password was being checked
            return LoginCheck(None, "unknown_user", attempt.lockout)
        await self.throttle.succeeded(attempt)
        return LoginCheck(user, "ok")

    # -- tokens ----------------------------------------------------------------------------------
    async def issue_token(self, user: User, login: str | None = None) -> tuple[str, datetime]:
        """A new token for ``user``: of a new login, or of ``login`` when renewing."""
        token = secrets.token_urlsafe(32)
        ttl = self._settings.token_ttl_seconds
        expires = time.time() + ttl
        digest = _token_digest(token)
        lineage = login or secrets.token_hex(16)
        tokens = key("user", user.username, "tokens")
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(
                key("token", digest), json.dumps({"u": user.username, "exp": expires, "l": lineage}), ex=ttl
            )
            pipe.sadd(tokens, digest)
            pipe.expire(tokens, ttl)
            pipe.zadd(key("login", lineage), {digest: time.time()})
            pipe.expire(key("login", lineage), ttl)
            await pipe.execute()
        return token, datetime.fromtimestamp(expires, UTC)

    @staticmethod
    def _valid(raw: str | None, now: float) -> dict[str, Any] | None:
        if raw is None:
            return None
        data: dict[str, Any] = json.loads(raw)
        return data if data["exp"] >= now else None

    async def authenticate(self, token: str) -> tuple[User, TokenRef] | None:
        """The user a valid token belongs to, and the token's reference for what it starts."""
        digest = _token_digest(token)
        data = self._valid(await self._redis.get(key("token", digest)), time.time())
        if data is None:
            return None
        user = await self.get(data["u"])
        if user is None:
            return None
        return user, TokenRef(digest, data.get("l"))

    async def user_for_token(self, token: str) -> User | None:
        found = await self.authenticate(token)
        return found[0] if found is not None else None

    async def alive(self, refs: Collection[TokenRef]) -> set[TokenRef]:
        """Those of ``refs`` whose login still has a valid token (a ref without a login: its own token)."""
        logins = sorted({r.login for r in refs if r.login})
        members: dict[str, set[str]] = {}
        if logins:
            async with self._redis.pipeline(transaction=False) as pipe:
                for login in logins:
                    pipe.zrange(key("login", login), 0, -1)
                members = {login: set(m) for login, m in zip(logins, await pipe.execute(), strict=True)}
        digests = sorted({d for m in members.values() for d in m} | {r.digest for r in refs if not r.login})
        valid: set[str] = set()
        now = time.time()
        for start in range(0, len(digests), 500):
            chunk = digests[start : start + 500]
            raws = await self._redis.mget([key("token", d) for d in chunk])
            valid.update(d for d, raw in zip(chunk, raws, strict=True) if self._valid(raw, now) is not None)
        return {r for r in refs if (members.get(r.login, set()) if r.login else {r.digest}) & valid}

    async def refresh_token(self, token: str, grace_seconds: int = 60) -> tuple[str, datetime, User] | None:
        """A fresh token of the same login for the holder of a valid ``token``; the old one ends
        ``grace_seconds`` later.

        Long-running pages (the wall's display runs for weeks) renew before their token expires
        instead of sending someone to log in on the big screen. The grace lets requests and the
        WebSocket that still carry the old token finish or reconnect with the new one; what the old
        token started goes on with the login.
        """
        found = await self.authenticate(token)
        if found is None:
            return None
        user, ref = found
        new, expires = await self.issue_token(user, login=ref.login)
        digest_key = key("token", ref.digest)
        ttl = await self._redis.ttl(digest_key)
        if ttl < 0 or ttl > grace_seconds:
            await self._redis.expire(digest_key, grace_seconds)
        return new, expires, user

    async def revoke_token(self, token: str) -> TokenRef | None:
        """Log out ``token``: it and the older tokens of its login end (see the module docstring)."""
        digest = _token_digest(token)
        raw = await self._redis.get(key("token", digest))
        data: dict[str, Any] = json.loads(raw) if raw else {}
        login = data.get("l")
        digests = {digest}
        if login:
            lineage = key("login", login)
            issued = await self._redis.zscore(lineage, digest)
            if issued is not None:
                digests |= set(await self._redis.zrangebyscore(lineage, "-inf", issued))
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(*(key("token", d) for d in digests))
            if login:
                pipe.zrem(key("login", login), *digests)
            if data.get("u"):
                pipe.srem(key("user", data["u"], "tokens"), *digests)
            await pipe.execute()
        return TokenRef(digest, login) if data else None

    async def revoke_tokens(self, username: str) -> None:
        digests = await self._redis.smembers(key("user", username, "tokens"))
        keys = [key("token", d) for d in digests]
        await self._redis.delete(key("user", username, "tokens"), *keys)
