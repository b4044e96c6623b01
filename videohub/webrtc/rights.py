"""The WHEP rights sweep and the audit hook: sessions end when their viewer's rights do.

``RightsSweep`` is a part of the service (``videohub.services``): entered after the SessionManager,
it checks every ``interval`` seconds that each session's viewer, token and camera still allow it.
"""

from __future__ import annotations

import asyncio
import logging

from videohub.aio import CloseOnce, Part, TaskOwner, checkpoint
from videohub.audit import AuditLog
from videohub.policy import can_see_line
from videohub.registry import CameraRegistry
from videohub.store import OUTAGE, OutageLog
from videohub.users import UserStore
from videohub.webrtc.manager import SessionEndHook, SessionManager
from videohub.webrtc.session import SessionRecord

log = logging.getLogger(__name__)

# How often sessions are checked against users, cameras and tokens: a logout, an expired token or a
# revoked right ends playback within this (plus the check itself) on every worker.
RIGHTS_INTERVAL = 2.0
AUDIT_ACTION = "whep.session"


def audit_hook(audit: AuditLog) -> SessionEndHook:
    """Every viewing session, when it ends, as one audit entry: actor = viewer, target = camera."""

    async def on_session_end(record: SessionRecord) -> None:
        await audit.record(record.user, AUDIT_ACTION, record.camera_id, None, record.audit_dict())

    return on_session_end


async def sweep_rights(accounts: UserStore, registry: CameraRegistry, manager: SessionManager) -> int:
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
    viewers = {name: await accounts.get(name) for name in users}
    cams = {cid: await registry.get(cid) for cid in cameras}
    tokens = await accounts.alive({s.record.token for s in live if s.record.token is not None})
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


class RightsSweep(Part):
    """Ends sessions whose rights ended (``sweep_rights``), every ``interval`` seconds, in its own task."""

    def __init__(
        self, users: UserStore, registry: CameraRegistry, manager: SessionManager, interval: float
    ) -> None:
        self.users = users
        self.registry = registry
        self.manager = manager
        self.interval = interval
        self._tasks = TaskOwner("whep-rights")
        self._closing = CloseOnce()

    async def start(self) -> None:
        if self._tasks.started or self._closing.started:
            return
        await self._tasks.start()
        self._tasks.spawn(self._sweep_forever(), name="whep-rights")

    async def close(self) -> None:
        """Stop sweeping. Safe to call twice; a concurrent second caller waits for the first."""
        await self._closing.run(self._tasks.close)

    async def _sweep_forever(self) -> None:
        # While Redis is away, rights cannot be checked: sessions go on (the media never waits for
        # Redis) and the sweep catches up with changes once it is back.
        outage = OutageLog(log, "WHEP rights sweep")
        while True:
            checkpoint()  # the sweep's Redis calls may swallow a cancel on 3.11 (see videohub.aio)
            await asyncio.sleep(self.interval)
            try:
                await sweep_rights(self.users, self.registry, self.manager)
                outage.ok()
            except OUTAGE as exc:
                outage.failed(exc)
            except Exception:
                log.exception("WHEP rights sweep failed")
