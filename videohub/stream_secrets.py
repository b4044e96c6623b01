"""Each camera stream's secrets: how they are stored, whom they are bound to, how an edit changes them.

A stream's ``StreamSecrets`` are its user name and password and the values of the ``***`` credential
parameters of its URL, bound to the endpoint (scheme, host, port) they were given for. The rules of
an edit live here (``secrets_for``): credentials given again are taken, left out they stay only
while the endpoint stays; a sub stream on the main stream's endpoint uses the main stream's user
(``effective_secrets``). ``videohub.registry`` stores them in ``vh:cred:<id>``.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import quote

from ingest.source import Login
from ingest.url import CameraUrl, Endpoint, UrlError, parse_url
from videohub.errors import InvalidField
from videohub.models import Camera, CameraStreams, CredentialsIn

log = logging.getLogger(__name__)

STREAMS = ("main", "sub")


class Unset:
    """A field the request left out (as opposed to an explicit null)."""


UNSET = Unset()


@dataclass(frozen=True, slots=True)
class StreamSecrets:
    """What one stream's URL needs at open time, bound to the endpoint it was given for."""

    endpoint: Endpoint
    username: str | None = None
    password: str = field(default="", repr=False)
    params: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    """(lower-case name, value) of each ``***`` credential parameter, in URL order."""

    def param(self, name: str, index: int) -> str | None:
        """The value of the ``index``-th parameter called ``name`` (None when there is none)."""
        values = [value for n, value in self.params if n == name]
        return values[index] if index < len(values) else None

    def login(self) -> Login:
        """As ingest takes them: bound to the endpoint, the parameter values in URL order."""
        return Login(
            self.username, self.password, params=tuple(v for _, v in self.params), endpoint=self.endpoint
        )

    def dumps(self) -> str:
        return json.dumps(
            {
                "endpoint": str(self.endpoint),
                "username": self.username,
                "password": self.password,
                "params": [list(p) for p in self.params],
            }
        )

    @classmethod
    def loads(cls, raw: str) -> StreamSecrets:
        data = json.loads(raw)
        return cls(
            endpoint=Endpoint.parse(data["endpoint"]),
            username=data.get("username"),
            password=data.get("password") or "",
            params=tuple((str(n), str(v)) for n, v in data.get("params", [])),
        )


def endpoint_of(url: str) -> Endpoint | None:
    """Where ``url`` connects (None for a test source or a URL that does not parse)."""
    try:
        return parse_url(url).endpoint
    except UrlError:
        return None


def effective_secrets(
    camera: Camera, stored: Mapping[str, StreamSecrets], stream: str
) -> StreamSecrets | None:
    """The secrets ``stream`` opens with: its own, or for a sub stream on the main stream's endpoint
    without a user of its own, the main stream's user and password."""
    own = stored.get(stream)
    sub = camera.streams.sub
    if stream == "sub" and sub is not None and (own is None or own.username is None):
        main = stored.get("main")
        if main is not None and main.username is not None and main.endpoint == endpoint_of(sub.url):
            return StreamSecrets(main.endpoint, main.username, main.password, own.params if own else ())
    return own


def flag_streams(streams: CameraStreams, stored: Mapping[str, StreamSecrets]) -> CameraStreams:
    """``streams`` with ``has_credentials`` set from the secrets they will open with."""
    main = stored.get("main")
    main_user = main is not None and main.username is not None
    sub = streams.sub
    sub_user = False
    if sub is not None:
        own = stored.get("sub")
        sub_user = (own is not None and own.username is not None) or (
            main_user and main is not None and main.endpoint == endpoint_of(sub.url)
        )
    return CameraStreams(
        main=streams.main.model_copy(update={"has_credentials": main_user}),
        sub=sub.model_copy(update={"has_credentials": sub_user}) if sub is not None else None,
    )


# What a URL may hold besides percent-escapes (RFC 3986), for re-encoding URLs of older versions.
_URL_SAFE = "-._~:/?[]@!$&()*+,;=%"


def legacy_url(text: str) -> tuple[str, CameraUrl] | None:
    """A URL stored by an older version, as it reads now: itself, or percent-encoded when it held
    spaces or non-ASCII characters. None when it cannot be used (control characters stay refused)."""
    for candidate in (text, quote(text, safe=_URL_SAFE)):
        try:
            return candidate, parse_url(candidate)
        except UrlError:
            continue
    return None


def decode_secrets(camera: Camera, data: Mapping[str, str]) -> dict[str, StreamSecrets]:
    """A camera's ``vh:cred`` hash as secrets per stream (either layout)."""
    stored: dict[str, StreamSecrets] = {}
    for name in STREAMS:
        if name in data:
            try:
                stored[name] = StreamSecrets.loads(data[name])
            except (ValueError, KeyError, TypeError):
                log.warning("camera %s: stored %s credentials are unreadable", camera.id, name)
    if "main" not in stored and "username" in data:  # the camera-wide layout of older versions
        endpoint = endpoint_of(camera.streams.main.url)
        if endpoint is not None:
            stored["main"] = StreamSecrets(endpoint, data["username"], data.get("password", ""))
    return stored


def secrets_for(
    loc: tuple[str, ...],
    url: CameraUrl,
    prev: StreamSecrets | None,
    explicit: CredentialsIn | Unset | None,
) -> StreamSecrets | None:
    """The secrets of a stream given as ``url``: ``explicit`` credentials (None removes them), else
    the URL's userinfo, else ``prev``'s when the endpoint stayed; each ``***`` parameter takes the
    value stored for the same endpoint. Credentials never follow a stream to another endpoint."""
    if url.endpoint is None:
        return None  # file:// test sources take no credentials
    same_host = prev is not None and prev.endpoint == url.endpoint
    if isinstance(explicit, CredentialsIn):
        username, password = explicit.username, explicit.password.get_secret_value()
    elif explicit is None:
        username, password = None, ""
    elif url.username is not None:
        username, password = url.username, url.password or ""
    elif same_host and prev is not None:
        username, password = prev.username, prev.password
    else:
        username, password = None, ""  # another host: what was given for the old one stays behind
    params: list[tuple[str, str]] = []
    seen: Counter[str] = Counter()
    for param in url.params:
        name = param.name.lower()
        value = param.value
        if value is None and same_host and prev is not None:
            value = prev.param(name, seen[name])
        seen[name] += 1
        if value is None:
            raise InvalidField(loc, f"{param.name}=*** has no stored value for this host; write the value")
        params.append((name, value))
    if username is None and not params:
        return None
    return StreamSecrets(url.endpoint, username, password, tuple(params))


def drop_shared(streams: CameraStreams, stored: dict[str, StreamSecrets]) -> dict[str, StreamSecrets]:
    """A sub stream's copy of the main stream's user on the same endpoint is not kept twice."""
    main, sub = stored.get("main"), stored.get("sub")
    if (
        main is not None
        and sub is not None
        and streams.sub is not None
        and sub.endpoint == main.endpoint
        and (sub.username, sub.password) == (main.username, main.password)
    ):
        if sub.params:
            stored["sub"] = replace(sub, username=None, password="")
        else:
            del stored["sub"]
    return stored


def with_main_credentials(
    camera: Camera, stored: Mapping[str, StreamSecrets], credentials: CredentialsIn | None
) -> dict[str, StreamSecrets]:
    """The secrets after an edit that gives (or, with None, removes) only the main user/password."""
    out = dict(stored)
    endpoint = endpoint_of(camera.streams.main.url)
    main = stored.get("main")
    base = main if main is not None and main.endpoint == endpoint else None
    if credentials is None:
        if base is not None and base.params:
            out["main"] = replace(base, username=None, password="")
        else:
            out.pop("main", None)
    elif endpoint is not None:
        base = base or StreamSecrets(endpoint)
        out["main"] = replace(
            base, username=credentials.username, password=credentials.password.get_secret_value()
        )
    return out
