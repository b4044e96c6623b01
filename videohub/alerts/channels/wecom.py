"""WeCom (企业微信) group robot: ``POST <base_url>?key=<key>`` with a markdown message.

Body: ``{"msgtype": "markdown", "markdown": {"content": "…"}}``, content at most 4096 bytes of
UTF-8, in WeCom's markdown subset: headings, bold, links, inline code, quotes (``>``) and
``<font color="info|comment|warning">``. Success is HTTP 200 with ``errcode`` 0; -1 (busy), 45009
(too many messages: a robot takes 20 a minute) and 45033 (too many at once) are retried, any other
errcode (93000 invalid key, 40058 bad content …) parks the event.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any
from urllib.parse import quote

import httpx

from videohub.alerts.channels.message import Directory, Facts, inert_markdown, plain
from videohub.alerts.channels.robot import RobotChannel, fit, quote_lines
from videohub.settings.channels import WeComSettings, env_secret

CONTENT_BYTES = 4096
COLORS = {"opened": "warning", "updated": "warning", "acknowledged": "comment", "resolved": "info"}


def _code(value: str) -> str:
    """An inline code span's text: literal in markdown, so only a backtick could end it."""
    return plain(value, 64).replace("`", "'")


def wecom_markdown(f: Facts) -> str:
    """The message's markdown content (zh-CN)."""
    lines = [
        f'## <font color="{COLORS[f.event]}">{f.title(0)}</font>',
        f"**{inert_markdown(f.name(0), 64)}**　`{_code(f.camera_id)}`",
        *quote_lines(f),
    ]
    return fit(lines, CONTENT_BYTES)


class WeComChannel(RobotChannel):
    kind = "wecom"
    RETRY_CODES = frozenset({-1, 45009, 45033})

    def __init__(
        self,
        config: WeComSettings,
        client: httpx.AsyncClient,
        directory: Directory,
        *,
        timeout: float,
        park_statuses: Collection[int],
    ) -> None:
        self.key = env_secret(config.key_env)
        self.base_url = config.base_url
        super().__init__(
            config.name,
            config.lines,
            client,
            directory,
            events=config.events,
            timeout=timeout,
            park_statuses=park_statuses,
            secrets=[self.key, quote(self.key, safe="")],
            max_per_minute=config.max_per_minute,
        )

    def url(self) -> str:
        return f"{self.base_url}?key={quote(self.key, safe='')}"

    def body(self, facts: Facts) -> dict[str, Any]:
        return {"msgtype": "markdown", "markdown": {"content": wecom_markdown(facts)}}
