"""Wiring WHEP into the service: the session manager, its audit hook, and the rights sweep.

``whep_startup()`` is a ``videohub.app.Startup``: it starts the SessionManager on the Feed hub, puts
it on ``services.sessions`` and pushes its cleanup on the lifespan's exit stack.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

from videohub.aio import cancel_and_wait, checkpoint
from videohub.policy import can_see_line
from videohub.services import Services
from videohub.store import OUTAGE, OutageLog
from videohub.webrtc.manager import SessionEndHook, SessionManager
from videohub.webrtc.session import SessionRecord
from videohub.webrtc.source import FeedSource

log = logging.getLogger(__name__)

# How often sessions are checked against users, cameras and tokens: a logout, an expired token or a
# revoked right ends playback within this (plus the check itself) on every worker.
RIGHTS_INTERVAL = 2.0
AUDIT_ACTION = "whep.session"


def audit_hook(svc: Services) -> SessionEndHook:
    """Every viewing session, when it ends, as one audit entry: actor = viewer, target = camera."""

    async def on_session_end(record: SessionRecord) -> None:
        await svc.audit.record(record.user, AUDIT_ACTION, record.camera_id, None, record.audit_dict())

    return on_session_end


async def sweep_rights(svc: Services, manager: SessionManager) -> int:
    """End sessions whose viewer, token or camera is gone, or whose viewer may no longer see the camera.

    Covers user deletion and role/line changes (users publish no change events), the end of the
    login that started the session (logout, expiry, tokens revoked by a password change, from any
    worker or the CLI) and camera deletion, disabling or a move to another line, whoever made the
    change. Returns how many ended.
    """
    ended = 0
    live = manager.live()
    users = {s.record.user for s in live}
    cameras = {s.record.camera_id for s in live}
    viewers = {name: await svc.users.get(name) for name in users}
    cams = {cid: await svc.registry.get(cid) for cid in cameras}
    tokens = await svc.users.alive({s.record.token for s in live if s.record.token is not None})
    for session in live:
        user = viewers.get(session.record.user)
        camera = cams.get(session.record.camera_id)
        reason = None
        if user is None:
            reason = "user_removed"
        elif session.record.token is not None and session.record.token not in tokens:
            reason = "token_ended"
        elif camera is None:
            reason = "camera_removed"
        elif not camera.enabled:
            reason = "camera_disabled"
        elif not can_see_line(user, camera.line):
            reason = "rights_revoked"
        if reason is not None and await manager.end(session.id, reason) is not None:
            ended += 1
    return ended


async def _sweep_forever(svc: Services, manager: SessionManager, interval: float) -> None:
    # While Redis is away, rights cannot be checked: sessions go on (the media never waits for
    # Redis) and the sweep catches up with changes once it is back.
    outage = OutageLog(log, "WHEP rights sweep")
    while True:
        checkpoint()  # the sweep's Redis calls may swallow a cancel on 3.11 (see videohub.aio)
        await asyncio.sleep(interval)
        try:
            await sweep_rights(svc, manager)
            outage.ok()
        except OUTAGE as exc:
            outage.failed(exc)
        except Exception:
            log.exception("WHEP rights sweep failed")


def whep_startup(
    feeds: FeedSource | None = None,
    *,
    on_session_end: SessionEndHook | None = None,
    rights_interval: float = RIGHTS_INTERVAL,
) -> Callable[[Services, AsyncExitStack], Awaitable[None]]:
    """The WHEP part of the lifespan. ``feeds`` defaults to ``services.hub`` (start the hub first);
    ``on_session_end`` defaults to writing the audit trail."""

    async def start(svc: Services, stack: AsyncExitStack) -> None:
        source = feeds if feeds is not None else svc.hub
        if source is None:
            raise RuntimeError("WHEP needs the Feed hub: start it before WHEP")
        manager = SessionManager(
            svc.settings.webrtc, source, on_session_end=on_session_end or audit_hook(svc)
        )
        await manager.start()
        stack.push_async_callback(manager.close)
        svc.sessions = manager
        task = asyncio.create_task(_sweep_forever(svc, manager, rights_interval), name="whep-rights")

        async def stop_sweep() -> None:
            await cancel_and_wait(task)

        stack.push_async_callback(stop_sweep)

    return start
