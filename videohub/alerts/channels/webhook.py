"""The generic signed webhook: the event as JSON, HMAC-SHA256 signed, named by its delivery id.

Receivers get ``{"delivery": <id>, "event": …, "alert": {…}}`` with ``X-Videohub-Event``,
``X-Videohub-Delivery`` (what they de-duplicate on) and, when a secret is set,
``X-Videohub-Signature: sha256=<hex HMAC of the raw body>``. Any 2xx is taken; an answer in
``alerts.webhook_park_statuses`` (400, 401, 403, 404, 410, 422) parks the event at once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Collection

import httpx

from videohub.alerts.channels.base import Channel
from videohub.alerts.deadletter import Failure
from videohub.alerts.models import AlertEvent, EventType
from videohub.settings.alerts import WebhookSettings

SIGNATURE_HEADER = "X-Videohub-Signature"


def sign(secret: bytes, body: bytes) -> str:
    """The signature header value: ``sha256=<hex HMAC of the raw body>``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def http_failure(response: httpx.Response, park_statuses: Collection[int]) -> Failure:
    """A non-2xx answer: final when a retry cannot change it."""
    status = response.status_code
    return Failure(f"HTTP {status}", status, final=status in park_statuses)


class WebhookChannel(Channel):
    """One webhook endpoint (``alerts.webhooks[]``)."""

    kind = "webhook"

    def __init__(
        self,
        hook: WebhookSettings,
        client: httpx.AsyncClient,
        *,
        timeout: float,
        park_statuses: Collection[int],
    ) -> None:
        self.hook = hook
        self.secret = hook.secret_bytes()
        # The URL's query may carry a token (chat robots used as plain webhooks): keep it out of errors.
        in_query = [v for v in httpx.URL(hook.url).params.values() if len(v) >= 6]
        secret = [self.secret.decode()] if self.secret else []
        super().__init__(hook.name, hook.lines, secrets=[hook.url, *in_query, *secret])
        self.client = client
        self.timeout = timeout
        self.park_statuses = park_statuses

    async def render(self, delivery: str, event: AlertEvent) -> bytes:
        return json.dumps({"delivery": delivery, **event.body()}, ensure_ascii=False).encode()

    async def send(self, delivery: str, event: EventType, payload: bytes) -> Failure | None:
        headers = {
            "Content-Type": "application/json",
            "X-Videohub-Event": event,
            "X-Videohub-Delivery": delivery,
        }
        if self.secret is not None:
            headers[SIGNATURE_HEADER] = sign(self.secret, payload)
        try:
            response = await self.client.post(
                self.hook.url, content=payload, headers=headers, timeout=self.timeout
            )
        except httpx.HTTPError as exc:
            return Failure(self.failure(exc))
        if 200 <= response.status_code < 300:
            return None
        return http_failure(response, self.park_statuses)
