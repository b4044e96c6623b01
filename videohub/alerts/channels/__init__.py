"""Alert channels: where alert events go besides the UI and the Redis stream.

``webhook`` (signed JSON), ``wecom`` and ``dingtalk`` (group robots, markdown) and ``mail`` (SMTP).
Each renders an event into its own payload and sends it once (``base.Channel``); delivery itself
(consumer group, retries, parking) is ``videohub.alerts.delivery``, the same for all.
"""

from __future__ import annotations

import httpx

from videohub.alerts.channels.base import CHANNEL_KINDS, Channel
from videohub.alerts.channels.dingtalk import DingTalkChannel
from videohub.alerts.channels.mail import MailChannel
from videohub.alerts.channels.message import Directory
from videohub.alerts.channels.webhook import WebhookChannel
from videohub.alerts.channels.wecom import WeComChannel
from videohub.alerts.models import ChannelKind
from videohub.settings.alerts import AlertSettings

__all__ = ["CHANNEL_KINDS", "Channel", "ChannelKind", "Directory", "build_channels"]


def build_channels(settings: AlertSettings, directory: Directory, client: httpx.AsyncClient) -> list[Channel]:
    """Every configured channel: webhooks first, then WeCom, DingTalk and mail, in file order."""
    timeout, park = settings.webhook_timeout_seconds, settings.webhook_park_statuses
    channels: list[Channel] = [
        WebhookChannel(hook, client, timeout=timeout, park_statuses=park) for hook in settings.webhooks
    ]
    for wecom in settings.channels.wecom:
        channels.append(WeComChannel(wecom, client, directory, timeout=timeout, park_statuses=park))
    for ding in settings.channels.dingtalk:
        channels.append(DingTalkChannel(ding, client, directory, timeout=timeout, park_statuses=park))
    channels += [MailChannel(mail, directory) for mail in settings.channels.mail]
    return channels
