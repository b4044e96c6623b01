"""DingTalk (钉钉) custom group robot with the 加签 (signed) security setting.

``POST <base_url>?access_token=<token>&timestamp=<ms>&sign=<sign>`` where ``sign`` is
``urlencode(base64(HMAC-SHA256(key=secret, msg=f"{timestamp}\\n{secret}")))``; DingTalk accepts a
timestamp within an hour of its clock, so the URL is signed afresh at each attempt (a re-send of a
parked event is the same body under a new signature). Body: ``{"msgtype": "markdown", "markdown":
{"title": "…", "text": "…"}}`` plus ``"at": {"atMobiles": […], "isAtAll": …}`` when configured (the
numbers are written into the text as ``@<mobile>``, which is how DingTalk shows the mention).
Success is HTTP 200 with ``errcode`` 0; -1 (busy), 130101 and 410100 (sending too fast: a robot
takes 20 a minute) are retried, any other errcode (310000 sign, keyword or IP check failed,
300001 bad token …) parks the event.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Collection
from typing import Any
from urllib.parse import quote, quote_plus

import httpx

from videohub.alerts.channels.message import Directory, Facts, inert_markdown, plain
from videohub.alerts.channels.robot import RobotChannel, fit, quote_lines
from videohub.settings.channels import DingTalkSettings, env_secret

TEXT_BYTES = 4096


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """The ``sign`` query value, URL-encoded as DingTalk documents it."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest))


def dingtalk_markdown(f: Facts, at_mobiles: Collection[str] = ()) -> tuple[str, str]:
    """The message's (title, markdown text), zh-CN. The title is what the notification shows."""
    lines = [
        f"#### {f.title(0)}",
        f"**{inert_markdown(f.name(0), 64)}**（{inert_markdown(f.camera_id, 64)}）",
        *quote_lines(f),
    ]
    if at_mobiles:
        lines.append(" ".join(f"@{mobile}" for mobile in at_mobiles))
    return plain(f"{f.title(0)} · {f.name(0)}", 64), fit(lines, TEXT_BYTES)


class DingTalkChannel(RobotChannel):
    kind = "dingtalk"
    RETRY_CODES = frozenset({-1, 130101, 410100})

    def __init__(
        self,
        config: DingTalkSettings,
        client: httpx.AsyncClient,
        directory: Directory,
        *,
        timeout: float,
        park_statuses: Collection[int],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.token = env_secret(config.token_env)
        self.secret = env_secret(config.secret_env)
        self.config = config
        self.clock = clock
        super().__init__(
            config.name,
            config.lines,
            client,
            directory,
            events=config.events,
            timeout=timeout,
            park_statuses=park_statuses,
            secrets=[self.token, self.secret, quote(self.token, safe=""), quote_plus(self.secret)],
            max_per_minute=config.max_per_minute,
        )

    def url(self) -> str:
        timestamp = int(self.clock() * 1000)
        token = quote(self.token, safe="")
        return (
            f"{self.config.base_url}?access_token={token}"
            f"&timestamp={timestamp}&sign={dingtalk_sign(self.secret, timestamp)}"
        )

    def body(self, facts: Facts) -> dict[str, Any]:
        title, text = dingtalk_markdown(facts, self.config.at_mobiles)
        message: dict[str, Any] = {"msgtype": "markdown", "markdown": {"title": title, "text": text}}
        if self.config.at_mobiles or self.config.at_all:
            message["at"] = {"atMobiles": list(self.config.at_mobiles), "isAtAll": self.config.at_all}
        return message
