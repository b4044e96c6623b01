"""Credentials go into a URL only at open time, and never come out in a log line or error.

The registry stores URLs without userinfo and the credentials apart; ``with_credentials`` builds the
URL handed to FFmpeg, ``redact`` strips userinfo from any text (FFmpeg quotes the URL in errors).
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit, urlunsplit

# scheme://userinfo@ — userinfo is anything up to the last '@' before the host part ends.
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s'\"]*@)")


def redact(text: str) -> str:
    """``text`` with the userinfo of every URL in it removed."""
    return _USERINFO.sub(r"\g<scheme>", text)


def with_credentials(url: str, username: str | None, password: str | None) -> str:
    """``url`` with ``username:password@`` injected (percent-encoded); unchanged without a username.

    Any userinfo already in ``url`` is replaced.
    """
    if not username:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    userinfo = quote(username, safe="")
    if password:
        userinfo += ":" + quote(password, safe="")
    return urlunsplit((parts.scheme, f"{userinfo}@{netloc}", parts.path, parts.query, parts.fragment))
