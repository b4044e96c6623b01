"""Group robot doubles: tiny HTTP servers that check each request as WeCom and DingTalk document it.

``WeComRobot``: ``POST /cgi-bin/webhook/send?key=<key>`` (nothing else in the query), JSON
``{"msgtype": "markdown", "markdown": {"content": …}}`` and nothing more, content at most 4096
bytes of UTF-8; a wrong key answers errcode 93000 as WeCom does.

``DingTalkRobot``: ``POST /robot/send?access_token=…&timestamp=…&sign=…``; it recomputes the
signature from its own copy of the secret (HMAC-SHA256 of ``"<timestamp>\\n<secret>"``, base64,
URL-decoded once from the query) and wants the timestamp within an hour of its clock (else errcode
310000, as DingTalk); body ``{"msgtype": "markdown", "markdown": {"title", "text"}}`` with an
optional ``"at": {"atMobiles": [...], "isAtAll": bool}``.

A request that breaks the documented shape is answered with an error and listed in ``problems``;
``script`` lists errcodes to answer (in turn) to well-formed requests before taking them.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from tests.alerts.recorder import free_port

T = TypeVar("T")


@dataclass
class RobotRequest:
    path: str
    query: dict[str, list[str]]
    raw_query: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data


@dataclass
class Robot:
    """The HTTP part of a robot double; subclasses check requests (``check``)."""

    port: int = field(default_factory=free_port)
    script: list[int] = field(default_factory=list)
    """Errcodes answered, in turn, to well-formed requests before they are taken (0 takes one)."""
    requests: list[RobotRequest] = field(default_factory=list)
    """Every request, whatever the answer."""
    received: list[RobotRequest] = field(default_factory=list)
    """The messages taken (answered errcode 0)."""
    problems: list[str] = field(default_factory=list)
    echo_query: bool = False
    """Error answers repeat the request's path and query (a careless server echoing the key)."""
    _server: asyncio.Server | None = None

    @property
    def base_url(self) -> str:
        raise NotImplementedError

    def check(self, request: RobotRequest) -> tuple[int, str] | None:
        """(errcode, errmsg) for a request that breaks the documented shape, else None."""
        raise NotImplementedError

    async def start(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    def answer(self, request: RobotRequest) -> tuple[int, dict[str, Any]]:
        self.requests.append(request)
        echo = f", request {request.path}?{request.raw_query}" if self.echo_query else ""
        wrong = self.check(request)
        if wrong is not None:
            self.problems.append(wrong[1])
            return 200, {"errcode": wrong[0], "errmsg": wrong[1] + echo}
        code = self.script.pop(0) if self.script else 0
        if code == 0:
            self.received.append(request)
            return 200, {"errcode": 0, "errmsg": "ok"}
        return 200, {"errcode": code, "errmsg": f"scripted error {code}{echo}"}

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request_line = (await reader.readline()).decode("latin-1").strip()
                if not request_line:
                    break
                method, target, _version = request_line.split(" ", 2)
                headers: dict[str, str] = {}
                while True:
                    line = (await reader.readline()).decode("latin-1").strip()
                    if not line:
                        break
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                parts = urlsplit(target)
                request = RobotRequest(parts.path, parse_qs(parts.query), parts.query, headers, body)
                if method != "POST":
                    status, answer = 405, {"errcode": -1, "errmsg": "POST only"}
                    self.problems.append(f"{method} instead of POST")
                else:
                    status, answer = self.answer(request)
                payload = json.dumps(answer, ensure_ascii=False).encode()
                writer.write(
                    f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(payload)}\r\n\r\n".encode()
                    + payload
                )
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


def _json_body(request: RobotRequest) -> dict[str, Any] | str:
    if not request.headers.get("content-type", "").startswith("application/json"):
        return f"content-type {request.headers.get('content-type')!r}"
    try:
        body = request.json()
    except ValueError:
        return "body is not JSON"
    return body if isinstance(body, dict) else "body is not a JSON object"


@dataclass
class WeComRobot(Robot):
    key: str = "wecom-key-0f3a9c"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/cgi-bin/webhook/send"

    def check(self, request: RobotRequest) -> tuple[int, str] | None:
        if request.path != "/cgi-bin/webhook/send":
            return 404, f"path {request.path}"
        if request.query != {"key": [self.key]}:
            return 93000, "invalid webhook url, hint: [double]"
        body = _json_body(request)
        if isinstance(body, str):
            return 40035, body
        if set(body) != {"msgtype", "markdown"} or body["msgtype"] != "markdown":
            return 40008, f"body keys {sorted(body)} msgtype {body.get('msgtype')!r}"
        markdown = body["markdown"]
        if not isinstance(markdown, dict) or set(markdown) != {"content"}:
            return 40035, "markdown must be {content}"
        content = markdown["content"]
        if not isinstance(content, str) or not content:
            return 40035, "content must be a non-empty string"
        if len(content.encode()) > 4096:
            return 40058, f"content is {len(content.encode())} bytes (at most 4096)"
        return None

    def contents(self) -> list[str]:
        return [str(r.json()["markdown"]["content"]) for r in self.received]


@dataclass
class DingTalkRobot(Robot):
    token: str = "ding-token-7d21e4"
    secret: str = "SECd0ub1e-s3cret-f00"
    skew_ms: int = 0
    """Added to this double's clock (to test the freshness check)."""

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/robot/send"

    def expected_sign(self, timestamp: str) -> str:
        digest = hmac.new(self.secret.encode(), f"{timestamp}\n{self.secret}".encode(), hashlib.sha256)
        return base64.b64encode(digest.digest()).decode()

    def check(self, request: RobotRequest) -> tuple[int, str] | None:
        if request.path != "/robot/send":
            return 404, f"path {request.path}"
        if set(request.query) != {"access_token", "timestamp", "sign"}:
            return 400, f"query keys {sorted(request.query)}"
        if any(len(v) != 1 for v in request.query.values()):
            return 400, "a query key given twice"
        if request.query["access_token"][0] != self.token:
            return 300001, "token is not exist"
        timestamp = request.query["timestamp"][0]
        if not timestamp.isdigit():
            return 310000, "timestamp is not milliseconds"
        now_ms = int(time.time() * 1000) + self.skew_ms
        if abs(now_ms - int(timestamp)) > 3600 * 1000:
            return 310000, "invalid timestamp"
        if not hmac.compare_digest(request.query["sign"][0], self.expected_sign(timestamp)):
            return 310000, "sign not match"
        body = _json_body(request)
        if isinstance(body, str):
            return 400, body
        if not {"msgtype", "markdown"} <= set(body) <= {"msgtype", "markdown", "at"}:
            return 400, f"body keys {sorted(body)}"
        if body["msgtype"] != "markdown":
            return 400, f"msgtype {body['msgtype']!r}"
        markdown = body["markdown"]
        if not isinstance(markdown, dict) or set(markdown) != {"title", "text"}:
            return 400, "markdown must be {title, text}"
        if not all(isinstance(markdown[k], str) and markdown[k] for k in ("title", "text")):
            return 400, "title and text must be non-empty strings"
        if "at" in body:
            at = body["at"]
            ok = (
                isinstance(at, dict)
                and set(at) == {"atMobiles", "isAtAll"}
                and isinstance(at["atMobiles"], list)
                and all(isinstance(m, str) for m in at["atMobiles"])
                and isinstance(at["isAtAll"], bool)
            )
            if not ok:
                return 400, "at must be {atMobiles: [str], isAtAll: bool}"
        return None

    def messages(self) -> list[dict[str, Any]]:
        return [r.json() for r in self.received]


class InThread:
    """Doubles on an event loop of their own in a thread, for tests that are synchronous or that talk
    to a service process."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="doubles", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(15)

    def close(self) -> None:
        self.run(self._cancel_handlers())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    async def _cancel_handlers(self) -> None:
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
