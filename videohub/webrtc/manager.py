"""WHEP session manager: turns an SDP offer into a passthrough session, and ends sessions.

Sits between the API (``videohub/api/whep.py``) and the Feed hub: each session holds one Feed
subscription and one aiortc peer connection. The manager owns every live session and one watchdog
task; ``close()`` ends them all (idempotent). Each ending is reported once to the audit hook.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from aiortc import (
    RTCConfiguration,
    RTCIceCandidate,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)

from ingest.packet import Packet
from videohub.aio import CloseOnce, Part, TaskOwner, cancel_and_wait, checkpoint
from videohub.errors import (
    IceRestartUnsupported,
    InvalidOffer,
    NotFound,
    RateLimited,
    Unavailable,
    VideohubError,
)
from videohub.models import Camera, User
from videohub.settings.webrtc import WebRTCSettings
from videohub.users import TokenRef
from videohub.webrtc.candidates import CandidateKey, CandidatePolicy, candidate_key, sdp_candidate
from videohub.webrtc.feeds import FeedHub, FeedSubscription
from videohub.webrtc.h264 import h264_preferences, profile_level_id, register_h264_profiles
from videohub.webrtc.offer import TrickleFragment, clean_offer, validate_offer
from videohub.webrtc.packetizer import Packetizer
from videohub.webrtc.sender import PassthroughSender
from videohub.webrtc.session import SessionInfo, SessionRecord, WhepSession, session_ref
from videohub.webrtc.track import FeedTrack

log = logging.getLogger(__name__)

SessionEndHook = Callable[[SessionRecord], Awaitable[None]]
WATCHDOG_INTERVAL = 1.0


class SessionManager(Part):
    """All live WHEP sessions of this worker.

    ``feeds`` is the Feed hub (``subscribe(camera, stream)``); ``on_session_end`` receives each
    finished session's record (user, camera, stream, start, end, bytes, drops, reason).
    """

    def __init__(
        self,
        settings: WebRTCSettings,
        feeds: FeedHub,
        *,
        on_session_end: SessionEndHook | None = None,
        on_session_start: SessionEndHook | None = None,
    ) -> None:
        register_h264_profiles()
        self._settings = settings
        self._feeds = feeds
        self._on_end = on_session_end
        self._on_start = on_session_start
        self._sessions: dict[str, WhepSession] = {}
        # One packetizer for all sessions: each access unit is packetized once, whoever watches it.
        self.packetizer = Packetizer()
        self._pending = 0
        self._creating: Counter[str] = Counter()  # offers being answered, per user
        self.candidates = CandidatePolicy.create(
            settings.allowed_candidate_networks, settings.max_remote_candidates
        )
        self._tasks = TaskOwner("whep")
        self._watchdog: asyncio.Task[None] | None = None
        self._closing = CloseOnce()

    # lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._watchdog is None and not self._closed:
            await self._tasks.start()
            self._watchdog = self._tasks.spawn(self._watch(), name="whep-watchdog")

    @property
    def _closed(self) -> bool:
        return self._closing.started

    async def close(self) -> None:
        """End every session (reason ``shutdown``) and stop the watchdog. Safe to call twice; a
        concurrent second caller waits for the first."""
        await self._closing.run(self._close)

    async def _close(self) -> None:
        if self._watchdog is not None:
            await cancel_and_wait(self._watchdog)
        await asyncio.gather(*(self.end(sid, "shutdown") for sid in list(self._sessions)))
        await self._tasks.drain()  # endings started from aiortc callbacks
        await self._tasks.close()

    # queries ---------------------------------------------------------------------------------

    def get(self, session_id: str) -> WhepSession | None:
        return self._sessions.get(session_id)

    def require(self, session_id: str) -> WhepSession:
        session = self._sessions.get(session_id)
        if session is None:
            raise NotFound("no such WHEP session")
        return session

    def live(self) -> list[WhepSession]:
        return list(self._sessions.values())

    def sessions(self) -> list[SessionInfo]:
        return [s.info() for s in self._sessions.values()]

    def __len__(self) -> int:
        return len(self._sessions)

    # creating --------------------------------------------------------------------------------

    def _ice_servers(self) -> list[RTCIceServer]:
        # Always an explicit list: aiortc's default (None) is Google's public STUN server.
        return [
            RTCIceServer(
                urls=server.urls,
                username=server.username,
                credential=server.credential.get_secret_value() if server.credential else None,
            )
            for server in self._settings.ice_servers
        ]

    async def _first_keyframe(self, subscription: FeedSubscription) -> Packet:
        async def first() -> Packet:
            while True:
                packet = await subscription.get()
                if packet.keyframe:
                    return packet

        try:
            packet = await asyncio.wait_for(first(), self._settings.feed_start_timeout)
        except TimeoutError:
            raise Unavailable(
                "the camera feed did not deliver a picture in time", self._settings.retry_after_seconds
            ) from None
        except VideohubError:
            raise
        except Exception as exc:  # FeedClosed while starting: camera gone, disabled, unreachable
            raise Unavailable(
                f"the camera feed ended while starting ({type(exc).__name__})",
                self._settings.retry_after_seconds,
            ) from None
        if packet.codec != "h264":  # ingest normalizes everything to H.264; anything else is a bug
            raise Unavailable(
                f"the feed carries {packet.codec}, not H.264", self._settings.retry_after_seconds
            )
        return packet

    async def create(
        self,
        user: User,
        camera: Camera,
        stream: str,
        offer_sdp: str,
        remote: str | None = None,
        *,
        token: TokenRef | None = None,
    ) -> WhepSession:
        """Answer a WHEP offer. Raises InvalidOffer (400), Unavailable (503). ``token``: the caller's
        token, with which the session ends (see ``videohub.webrtc.rights.sweep_rights``)."""
        if self._closed:
            raise Unavailable("the WHEP service is stopping", self._settings.retry_after_seconds)
        # A manager used without start() (no watchdog) still owns the endings of its sessions.
        await self._tasks.start()
        self._admit(user.username)
        validate_offer(offer_sdp)
        offer_sdp, candidates = self._filter_offer(offer_sdp, remote)
        if not camera.enabled:
            raise Unavailable("the camera is disabled", self._settings.retry_after_seconds)
        self._pending += 1
        self._creating[user.username] += 1
        try:
            session = await self._create(user, camera, stream, offer_sdp, remote, token)
        finally:
            self._pending -= 1
            self._creating[user.username] -= 1
            if self._creating[user.username] <= 0:
                del self._creating[user.username]
        session.remote_candidates |= candidates
        return session

    def _admit(self, username: str) -> None:
        """Refuse a new session before any work: 429 for this user's caps, 503 for the worker's.

        "Pending" is an offer being answered or an answered session whose player has not completed
        ICE yet; it holds its slot for at most ``connect_timeout``, so a client that posts offers and
        never connects cannot hold more than ``max_pending_per_user`` of them.
        """
        s = self._settings
        mine = [x for x in self._sessions.values() if x.record.user == username]
        creating = self._creating[username]
        if len(mine) + creating >= s.max_sessions_per_user:
            raise RateLimited(
                f"this user already has {s.max_sessions_per_user} viewing sessions "
                "(webrtc.max_sessions_per_user): end one first",
                s.retry_after_seconds,
            )
        if sum(x.pending for x in mine) + creating >= s.max_pending_per_user:
            # A player normally connects within a second: a short Retry-After lets a big wall fill
            # quickly, while posting more offers that never connect gains nothing.
            raise RateLimited(
                f"{s.max_pending_per_user} sessions of this user are still connecting "
                "(webrtc.max_pending_per_user)",
                1,
            )
        if sum(x.pending for x in self._sessions.values()) + self._pending >= s.max_pending:
            raise Unavailable(
                f"{s.max_pending} viewing sessions are connecting on this worker (webrtc.max_pending)", 1
            )
        if len(self._sessions) + self._pending >= s.max_sessions:
            raise Unavailable("too many viewing sessions on this worker", s.retry_after_seconds)

    def _filter_offer(self, offer_sdp: str, remote: str | None) -> tuple[str, set[CandidateKey]]:
        """The offer without the candidates the policy refuses, and the distinct ones it keeps (capped)."""
        kept: set[CandidateKey] = set()

        def keep(line: str) -> bool:
            parsed = sdp_candidate(line[len("a=candidate:") :])
            if parsed is None or not self.candidates.allows(parsed[0], parsed[1], parsed[2], remote):
                return False
            kept.add(candidate_key(*parsed))
            return True

        cleaned = clean_offer(offer_sdp, keep)
        self.candidates.check_count(len(kept))
        return cleaned, kept

    async def _create(
        self,
        user: User,
        camera: Camera,
        stream: str,
        offer_sdp: str,
        remote: str | None,
        token: TokenRef | None,
    ) -> WhepSession:
        try:
            subscription = await self._feeds.subscribe(camera, stream)
        except VideohubError:
            raise
        except Exception as exc:
            log.warning("camera %s/%s: feed cannot start: %s", camera.id, stream, type(exc).__name__)
            raise Unavailable("the camera feed cannot start", self._settings.retry_after_seconds) from None
        pc: RTCPeerConnection | None = None
        try:
            first = await self._first_keyframe(subscription)
            session_id = secrets.token_urlsafe(24)
            pc = RTCPeerConnection(RTCConfiguration(iceServers=self._ice_servers()))
            track = FeedTrack(subscription, first, lambda reason: self._spawn(self.end(session_id, reason)))
            transceiver = pc.addTransceiver(track, direction="sendonly")
            # Must precede setRemoteDescription: afterwards aiortc has already negotiated (VP8 first).
            transceiver.setCodecPreferences(h264_preferences(profile_level_id(first.data)))
            # The player's keyframe requests reach the sender only; passthrough cannot honour them,
            # so they are counted on the track instead of setting aiortc's unused encoder flag.
            setattr(transceiver.sender, "_send_keyframe", track.request_keyframe)  # noqa: B010
            passthrough: PassthroughSender | None = None
            if PassthroughSender.supported(transceiver.sender):
                passthrough = PassthroughSender(
                    transceiver.sender, track, self.packetizer, direct=self._settings.send_from_ingest
                )
                passthrough.install()
            else:  # another aiortc: its generic loop (slower per viewer, same stream) still works
                log.warning("aiortc sender internals changed: using aiortc's RTP loop")
            try:
                await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
                answer = await pc.createAnswer()
            except (ValueError, AssertionError) as exc:
                raise InvalidOffer(f"the offer cannot be answered: {exc}") from None
            except Exception as exc:  # aiortc's OperationError: nothing in common with the player
                raise InvalidOffer(f"the offer cannot be answered: {type(exc).__name__}") from None
            try:
                # aiortc gathers every candidate inside setLocalDescription, so the answer is complete.
                await asyncio.wait_for(pc.setLocalDescription(answer), self._settings.gather_timeout)
            except TimeoutError:
                raise Unavailable(
                    "ICE candidate gathering timed out", self._settings.retry_after_seconds
                ) from None
            local = pc.localDescription
            record = SessionRecord(
                id=session_id,
                user=user.username,
                camera_id=camera.id,
                stream=stream,
                started_at=datetime.now(UTC),
                remote=remote,
                token=token,
            )
            session = WhepSession(
                record=record,
                camera_name=camera.name,
                line=camera.line,
                pc=pc,
                track=track,
                sender=transceiver.sender,
                subscription=subscription,
                passthrough=passthrough,
                answer_sdp=local.sdp,
                etag=f'"{secrets.token_hex(8)}"',
            )
        except BaseException:
            subscription.close()
            if pc is not None:
                await pc.close()
            raise
        if self._closed:  # close() ran while this offer was being answered
            await session.close("shutdown")
            raise Unavailable("the WHEP service is stopping", self._settings.retry_after_seconds)
        self._sessions[session_id] = session
        if self._on_start is not None:
            try:
                await self._on_start(session.record)
            except Exception:
                log.exception("session-start hook failed for session %s", session_ref(session_id))

        @pc.on("connectionstatechange")
        def _state() -> None:
            if pc.connectionState in ("failed", "closed"):
                self._spawn(self.end(session_id, pc.connectionState))

        log.info(
            "WHEP session %s: %s watches %s/%s", session_ref(session_id), user.username, camera.id, stream
        )
        return session

    # trickle ---------------------------------------------------------------------------------

    async def trickle(self, session: WhepSession, frag: TrickleFragment) -> None:
        """Add trickled candidates the policy allows; 422 (nothing added) past the per-session cap."""
        current = session.remote_ufrag()
        if frag.ufrag is not None and current is not None and frag.ufrag != current:
            raise IceRestartUnsupported("ICE restart is not supported: start a new session")
        fresh: dict[CandidateKey, RTCIceCandidate] = {}
        for candidate in frag.candidates:
            transport, host, port = candidate.protocol, candidate.ip, candidate.port
            if not self.candidates.allows(transport, host, port, session.record.remote):
                continue  # never contacted; the player still connects through its own checks
            key = candidate_key(transport, host, port, candidate.component)
            if key not in session.remote_candidates:
                fresh[key] = candidate
        self.candidates.check_count(len(session.remote_candidates) + len(fresh))
        session.remote_candidates.update(fresh)
        frag.candidates = list(fresh.values())
        await session.add_remote_candidates(frag)

    # ending ----------------------------------------------------------------------------------

    async def end(self, session_id: str, reason: str) -> SessionRecord | None:
        """End one session (idempotent); the audit hook hears of it once."""
        session = self._sessions.pop(session_id, None)
        if session is None:
            return None
        record = await session.close(reason)
        log.info(
            "WHEP session %s ended (%s) after %.1f s, %d bytes, %d drops",
            session_ref(session_id),
            reason,
            record.duration_seconds,
            record.bytes_sent,
            record.drops,
        )
        if self._on_end is not None:
            try:
                await self._on_end(record)
            except Exception:
                log.exception("session-end hook failed for session %s", session_ref(session_id))
        return record

    async def _end_where(self, match: Callable[[WhepSession], bool], reason: str) -> int:
        ids = [sid for sid, s in self._sessions.items() if match(s)]
        await asyncio.gather(*(self.end(sid, reason) for sid in ids))
        return len(ids)

    async def close_for_user(self, username: str, reason: str = "rights_revoked") -> int:
        """End every session of ``username`` (deleted, role or line changed). Returns how many."""
        return await self._end_where(lambda s: s.record.user == username, reason)

    async def close_for_token(self, token: TokenRef, reason: str = "token_ended") -> int:
        """End every session started with a token of ``token``'s login (logged out)."""

        def started_by(s: WhepSession) -> bool:
            mine = s.record.token
            if mine is None:
                return False
            return mine.login == token.login if token.login else mine.digest == token.digest

        return await self._end_where(started_by, reason)

    async def close_for_camera(self, camera_id: str, reason: str = "camera_removed") -> int:
        """End every session on ``camera_id`` (deleted, disabled, moved to another line)."""
        return await self._end_where(lambda s: s.record.camera_id == camera_id, reason)

    # background ------------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, object]) -> None:
        # Endings triggered from aiortc callbacks: owned by the manager's tasks, awaited by close().
        if self._tasks.closed or not self._tasks.started:
            coro.close()  # closing (close() ends every session itself), or no session was created
            return
        self._tasks.spawn(coro)

    async def _watch(self) -> None:
        s = self._settings
        while True:
            checkpoint()
            await asyncio.sleep(WATCHDOG_INTERVAL)
            now = time.monotonic()
            for sid, session in list(self._sessions.items()):
                try:
                    reason = await session.check_alive(now, s.connect_timeout, s.disconnect_grace_seconds)
                except Exception:
                    log.exception("session %s: liveness check failed", session_ref(sid))
                    reason = "error"
                if reason is not None:
                    self._spawn(self.end(sid, reason))
