"""The last admin cannot be removed: not by the API (not even by themselves), not by the CLI, and not
by two deletes racing each other."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.conftest import make_settings
from tests.fixtures.service import ADMIN_PASSWORD, USER_PASSWORD, VideohubService
from videohub.errors import Conflict
from videohub.store import Store
from videohub.users import UserStore


def test_the_last_admin_cannot_delete_themselves(
    videohub_service_factory: Callable[..., VideohubService],
) -> None:
    svc = videohub_service_factory()
    response = svc.request("DELETE", "/api/users/admin")
    assert response.status_code == 409, response.text
    assert "last admin" in response.json()["detail"]
    # Refused means nothing happened: the admin and their token are still there.
    assert "admin" in [u["username"] for u in svc.call("GET", "/api/users")]
    assert svc.call("GET", "/api/auth/me")["username"] == "admin"
    # With a second admin, either one may go.
    other = svc.create_user("admin2", "admin")
    assert svc.request("DELETE", "/api/users/admin", token=other).status_code == 204
    last = svc.request("DELETE", "/api/users/admin2", token=other)
    assert last.status_code == 409 and "last admin" in last.json()["detail"]


async def test_two_admins_deleting_each_other_at_once_leave_one(
    videohub_service_factory: Callable[..., VideohubService],
) -> None:
    svc = videohub_service_factory()
    survivor, token = "admin", svc.admin_token
    async with httpx.AsyncClient(base_url=svc.base_url, timeout=30.0) as client:
        for round_ in range(8):
            rival = f"rival{round_}"
            body = {"username": rival, "password": USER_PASSWORD, "role": "admin"}
            await asyncio.to_thread(svc.call, "POST", "/api/users", token=token, json=body, expect=201)
            rival_token = await asyncio.to_thread(svc.login, rival, USER_PASSWORD)
            # Each deletes the other at the same moment.
            first, second = await asyncio.gather(
                client.delete(f"/api/users/{rival}", headers={"Authorization": f"Bearer {token}"}),
                client.delete(f"/api/users/{survivor}", headers={"Authorization": f"Bearer {rival_token}"}),
            )
            codes = sorted([first.status_code, second.status_code])
            assert codes.count(204) == 1, (round_, first.text, second.text)
            if first.status_code != 204:  # the rival won: it is the admin now
                survivor, token = rival, rival_token
            users = await asyncio.to_thread(svc.call, "GET", "/api/users", token=token)
            admins = [u["username"] for u in users if u["role"] == "admin"]
            assert admins == [survivor], (round_, admins)


async def test_parallel_deletes_of_every_admin_keep_exactly_one(store: Store) -> None:
    settings = make_settings()
    users = UserStore(store.redis, settings.auth, settings.line_ids)
    names = [f"a{n}" for n in range(12)]
    for name in names:
        await users.create(name, "admin-pass-123", "admin")
    results = await asyncio.gather(*(users.delete(name) for name in names), return_exceptions=True)
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(refused) == 1 and isinstance(refused[0], Conflict), results
    assert [u.role for u in await users.list()] == ["admin"]


def _cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "videohub.cli", *args], input=stdin, capture_output=True, text=True, timeout=60
    )


def test_the_cli_refuses_to_remove_the_last_admin(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    added = _cli(
        "user",
        "add",
        "boss",
        "--role",
        "admin",
        "--password-stdin",
        "--data-dir",
        data,
        stdin="boss-pass-1\n",
    )
    assert added.returncode == 0, added.stderr
    removed = _cli("user", "remove", "boss", "--data-dir", data)
    assert removed.returncode == 1, removed.stdout
    assert "last admin" in removed.stderr
    assert "boss\tadmin" in _cli("user", "list", "--data-dir", data).stdout


def test_the_cli_refuses_while_the_service_runs(
    videohub_service_factory: Callable[..., VideohubService],
) -> None:
    svc = videohub_service_factory()
    removed = _cli("user", "remove", "admin", "--data-dir", str(svc.data_dir))
    assert removed.returncode == 1 and "last admin" in removed.stderr
    assert svc.login("admin", ADMIN_PASSWORD)
    tag = uuid.uuid4().hex[:6]
    svc.create_user(f"second{tag}", "admin")
    assert _cli("user", "remove", "admin", "--data-dir", str(svc.data_dir)).returncode == 0
