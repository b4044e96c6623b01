"""Mail: one message per alert event over SMTP (stdlib ``smtplib``, on the channel's own thread).

The message is rendered once (a parked one is re-sent as the same bytes: same ``Message-ID``, so a
mail client shows a re-send once): subject in Chinese (RFC 2047 encoded UTF-8), a plain-text body
in Chinese with English below, and the same as HTML unless ``html: false``. Headers name the
delivery (``X-Videohub-Delivery``) and mark the mail as automatic (``Auto-Submitted``), so
vacation responders stay quiet.

Security: ``starttls`` upgrades the connection before anything else is said, and fails (never falls
back to clear text) when the server does not offer it; ``ssl`` speaks TLS from the first byte.
Either way the server's certificate and host name are verified (``smtplib``'s own default does not
verify). A login is only allowed with one of them (settings refuse ``none`` with a username).

An SMTP 5xx answer cannot change by retrying and parks the event; 4xx answers, timeouts and
connection errors are retried.
"""

from __future__ import annotations

import asyncio
import email.policy
import html
import smtplib
import socket
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from videohub.alerts.channels import strings
from videohub.alerts.channels.base import Channel
from videohub.alerts.channels.message import CHINA, Directory, Facts, describe, local, plain
from videohub.alerts.deadletter import Failure
from videohub.alerts.models import AlertEvent, EventType
from videohub.settings.channels import MailSettings, env_secret

SEPARATOR = "—— English ——"


def mail_subject(f: Facts) -> str:
    """e.g. 【视频监控】告警 · 离线：梅里镇水厂（公安）: one line, whatever the camera's name holds."""
    name = plain(f.name(0), 64)
    return f"{strings.LABELS['subject'][0]}{f.title(0)}：{name}（{plain(f.line[0])}）"


def mail_fields(f: Facts, lang: int) -> list[tuple[str, str]]:
    """(label, value) rows of the body in one language; values are plain one-line text."""
    label = {key: value[lang] for key, value in strings.LABELS.items()}
    comma = "，" if lang == 0 else ", "
    zone = f"（{label['zone']}）" if lang == 0 else f" ({label['zone']})"
    rows = [
        (
            label["camera"],
            f"{plain(f.name(lang), 64)}{' (' if lang else '（'}{plain(f.camera_id)}{')' if lang else '）'}",
        )
    ]
    rows.append((label["line"], plain(f.line[lang])))
    if f.area:
        rows.append((label["area"], plain(f.area, 64)))
    if f.reasons:
        rows.append((label["reasons"], ("、" if lang == 0 else ", ").join(f.reason_words(lang))))
    rows.append((label["opened"], local(f.opened_at) + zone))
    if f.acked_at is not None:
        value = f"{local(f.acked_at)}{comma}{plain(f.acked_by or '')}"
        rows.append((label["acknowledged"], value))
        if f.ack_note:
            rows.append((label["note"], plain(f.ack_note, 500)))
    if f.resolved_at is not None:
        who = plain(f.resolved_by or "")
        by = label["by_itself"] if f.resolved_by == "auto" else label["by"].format(who=who)
        rows.append((label["resolved"], f"{local(f.resolved_at)}{comma}{by}"))
        if f.resolve_note:
            rows.append((label["note"], plain(f.resolve_note, 500)))
    if f.link:
        rows.append((label["page"], f.link))
    return rows


def mail_text(f: Facts) -> str:
    """The plain-text body: Chinese, then English below the separator."""
    out = [f.title(0), *(f"{k}：{v}" for k, v in mail_fields(f, 0)), "", SEPARATOR, f.title(1)]
    out += [f"{k}: {v}" for k, v in mail_fields(f, 1)]
    return "\n".join(out) + "\n"


def mail_html(f: Facts) -> str:
    """The HTML body: the same rows, every value escaped."""

    def table(lang: int) -> str:
        rows = []
        for key, value in mail_fields(f, lang):
            cell = html.escape(value)
            if f.link is not None and value == f.link:
                cell = f'<a href="{html.escape(f.link)}">{cell}</a>'
            rows.append(f'<tr><th align="left">{html.escape(key)}</th><td>{cell}</td></tr>')
        return f"<h2>{html.escape(f.title(lang))}</h2>\n<table>\n" + "\n".join(rows) + "\n</table>"

    return (
        '<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8"></head><body>\n'
        f'{table(0)}\n<hr>\n<div lang="en">\n{table(1)}\n</div>\n</body></html>\n'
    )


def mail_message(f: Facts, config: MailSettings, delivery: str, now: datetime) -> EmailMessage:
    message = EmailMessage(policy=email.policy.SMTP)
    message["Subject"] = mail_subject(f)
    message["From"] = Address(display_name=plain(config.from_name), addr_spec=config.from_addr)
    message["To"] = ", ".join(config.to)
    message["Date"] = format_datetime(now.astimezone(CHINA))
    message["Message-ID"] = f"<{delivery}.{config.name}@{config.from_addr.rpartition('@')[2]}>"
    message["Auto-Submitted"] = "auto-generated"
    message["X-Videohub-Delivery"] = delivery
    message["X-Videohub-Event"] = f.event
    message.set_content(mail_text(f), charset="utf-8")
    if config.html:
        message.add_alternative(mail_html(f), subtype="html", charset="utf-8")
    return message


class MailChannel(Channel):
    kind = "mail"

    def __init__(self, config: MailSettings, directory: Directory) -> None:
        self.config = config
        self.directory = directory
        self.password = env_secret(config.password_env) if config.password_env else None
        secrets = [self.password] if self.password else []
        super().__init__(config.name, config.lines, events=config.events, secrets=secrets)
        # One thread of its own: a slow mail server holds this channel's deliveries only.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"mail-{config.name}")

    async def render(self, delivery: str, event: AlertEvent) -> bytes:
        facts = await describe(event, self.directory)
        now = datetime.fromtimestamp(time.time(), UTC)
        return mail_message(facts, self.config, delivery, now).as_bytes()

    async def send(self, delivery: str, event: EventType, payload: bytes) -> Failure | None:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._send, payload)

    def _tls(self) -> ssl.SSLContext:
        ca = self.config.ca_file
        return ssl.create_default_context(cafile=str(ca) if ca is not None else None)

    def _send(self, payload: bytes) -> Failure | None:
        c = self.config
        try:
            smtp: smtplib.SMTP
            if c.security == "ssl":
                smtp = smtplib.SMTP_SSL(
                    c.host,
                    c.port,
                    local_hostname=socket.gethostname(),
                    timeout=c.timeout_seconds,
                    context=self._tls(),
                )
            else:
                smtp = smtplib.SMTP(
                    c.host, c.port, local_hostname=socket.gethostname(), timeout=c.timeout_seconds
                )
            with smtp:
                smtp.ehlo()
                if c.security == "starttls":
                    smtp.starttls(context=self._tls())  # no STARTTLS offered: SMTPNotSupportedError
                    smtp.ehlo()
                if c.username is not None and self.password is not None:
                    smtp.login(c.username, self.password)
                smtp.sendmail(c.from_addr, c.to, payload)
        except smtplib.SMTPAuthenticationError as exc:
            # Only the code: a server's text may echo what was sent.
            return Failure(f"SMTP {exc.smtp_code}: login refused", final=True)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = sorted({code for code, _ in exc.recipients.values()})
            return Failure(f"SMTP {codes[0]}: recipients refused", final=all(500 <= c < 600 for c in codes))
        except smtplib.SMTPResponseException as exc:
            text = (
                exc.smtp_error.decode(errors="replace")
                if isinstance(exc.smtp_error, bytes)
                else str(exc.smtp_error)
            )
            return Failure(f"SMTP {exc.smtp_code}: {self.clean(text, 120)}", final=500 <= exc.smtp_code < 600)
        except smtplib.SMTPNotSupportedError:
            return Failure("SMTP: the server offers no STARTTLS (nothing was sent in clear)", final=True)
        except (smtplib.SMTPException, OSError) as exc:  # timeouts, refused connections, TLS errors
            return Failure(self.failure(exc))
        return None

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
