"""Camera URLs: the one strict check, credentials kept apart, and redaction of any text.

A camera URL reaches FFmpeg, which writes it onto the wire (the RTSP request line). ``parse_url`` is
the check the registry applies before it stores a URL and ingest applies again before it opens one,
so a bad value that reached the store is inert. It refuses control characters, whitespace and
non-ASCII (``urlsplit`` silently drops CR/LF from its parsed copy, which is how a URL became Redis
commands), normalizes (scheme and host lower-case, port in canonical digits, IPv6 compressed), and
splits credentials off: userinfo (``user:pass@``) and credential parameters (``user=``,
``password=`` …) in path segments or the query, where many DVRs and NVRs put them
(``/user=admin&password=…&channel=1&stream=0.sdp``, ``?password=…``).

The stored form has no userinfo and ``***`` in place of each credential parameter's value.
``restore_params`` puts the values back at open time, at the same positions, so the camera sees the
URL as it was written; ``with_credentials`` adds the userinfo. ``redact`` removes both from any text
(FFmpeg quotes the URL it was given in its error messages).
"""

from __future__ import annotations

import ipaddress
import re
import socket
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit, urlunsplit

SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "http", "https"})
"""Network schemes a camera may use (FFmpeg's other protocols, such as rtmpt's HTTP tunnel, stay out:
each one more is a place where a URL turns into requests; ``ingest.source.open_options`` also
whitelists the protocols each scheme may use underneath)."""
TEST_SCHEMES = frozenset({"file"})
DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "rtmp": 1935, "http": 80, "https": 443}
CREDENTIAL_PARAMS = frozenset(
    {"user", "username", "password", "pwd", "passwd", "pass", "auth", "token", "key"}
)
PLACEHOLDER = "***"
MAX_LENGTH = 2048

# RFC 3986 characters, minus '#' (no fragment means anything to a camera) and "'" (FFmpeg quotes URLs
# with it in its messages: a value holding one could end redaction early). Write them %-encoded.
_ALLOWED = frozenset(string.ascii_letters + string.digits + "-._~:/?[]@!$&()*+,;=%")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_ENCODED_CONTROL = re.compile(r"%(?:[01][0-9A-Fa-f]|7[Ff])")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
# A credential parameter: a name=value token after a delimiter. In the path a value ends at the next
# segment or parameter; in the query only at the next parameter ('/' and '?' are data there).
_PATH_PARAM = re.compile(r"(?<=[/;&])([A-Za-z_]+)=([^/;&?]*)")
_QUERY_PARAM = re.compile(r"(?<=[?&;])([A-Za-z_]+)=([^&;]*)")


class UrlError(ValueError):
    """A URL that must not be used. The message names the problem, never a secret of the URL."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a URL connects: what credentials are bound to (``port`` filled in from the scheme)."""

    scheme: str
    host: str
    """Lower-case name or IP literal (an IPv6 address without brackets)."""
    port: int

    @property
    def netloc(self) -> str:
        return f"{_bracket(self.host)}:{self.port}"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.netloc}"

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        """The inverse of ``str()`` (for stored bindings)."""
        endpoint = parse_url(text).endpoint
        if endpoint is None:
            raise UrlError("not a network endpoint")
        return endpoint


@dataclass(frozen=True, slots=True)
class Param:
    """One credential parameter of a URL, in order of appearance."""

    name: str
    value: str | None = field(repr=False)
    """As written (percent-escapes kept); None when the URL gave the placeholder ``***``."""


@dataclass(frozen=True, slots=True)
class CameraUrl:
    """A checked URL split into its stored form and its secrets."""

    url: str
    """Normalized, without userinfo, with ``***`` for every credential parameter value."""
    endpoint: Endpoint | None
    """None for file:// test sources."""
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    params: tuple[Param, ...] = ()

    @property
    def has_secrets(self) -> bool:
        return self.username is not None or any(p.value is not None for p in self.params)


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _path_start(url: str, start: int) -> int:
    """Where the path (or query) begins: the first '/' or '?' at or after ``start`` (the authority)."""
    found = [i for i in (url.find("/", start), url.find("?", start)) if i >= 0]
    return min(found, default=len(url))


def _check_characters(raw: str) -> None:
    if not raw:
        raise UrlError("URL is empty")
    if len(raw) > MAX_LENGTH:
        raise UrlError(f"URL is longer than {MAX_LENGTH} characters")
    for position, char in enumerate(raw, start=1):
        if char in _ALLOWED:
            continue
        code = ord(char)
        if code < 0x20 or code == 0x7F:
            kind = "a control character"
        elif char.isspace():
            kind = "whitespace"
        elif code > 0x7E:
            kind = "a non-ASCII character"
        elif char == "#":
            raise UrlError(f"URL has a '#' at position {position}: camera URLs have no fragment (write %23)")
        else:
            kind = f"the character {char!r}"
        raise UrlError(
            f"URL contains {kind} (U+{code:04X}) at position {position}; "
            "camera URLs are plain ASCII without spaces (percent-encode anything else)"
        )
    bad = _BAD_ESCAPE.search(raw)
    if bad is not None:
        raise UrlError(f"URL has a '%' not followed by two hex digits at position {bad.start() + 1}")
    encoded = _ENCODED_CONTROL.search(raw)
    if encoded is not None:
        raise UrlError(f"URL contains a percent-encoded control character at position {encoded.start() + 1}")


def _host(text: str) -> str:
    """The normalized host of an authority's host part (without port)."""
    if text.startswith("["):
        literal = text[1:-1]
        if "%" in literal:
            raise UrlError("IPv6 zone ids are not supported in camera URLs")
        try:
            return ipaddress.IPv6Address(literal).compressed
        except ValueError:
            raise UrlError("URL host is not a valid IPv6 address") from None
    host = text.lower()
    if host.endswith("."):
        host = host[:-1]
    if not host:
        raise UrlError("URL has no host")
    try:
        packed = socket.inet_aton(host)
    except OSError:
        packed = None
    if packed is not None:
        # inet_aton (and so FFmpeg's resolver) reads "127.1", "0x7f000001" and "2130706433" as
        # addresses: only the canonical form is accepted, so the checks see what FFmpeg will dial.
        canonical = socket.inet_ntoa(packed)
        if canonical != host:
            raise UrlError(f"write the IPv4 address as four decimal numbers ({canonical})")
        return host
    labels = host.split(".")
    if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise UrlError("URL host is not a valid host name or IP address")
    if labels[-1].isdigit():
        raise UrlError("URL host is not a valid IPv4 address")
    return host


def _split_authority(authority: str) -> tuple[str | None, str | None, str, int | None]:
    """(username, password, host, port) of ``userinfo@host:port``; the userinfo percent-decoded."""
    username = password = None
    if "@" in authority:
        userinfo, hostport = authority.rsplit("@", 1)
        user, colon, secret = userinfo.partition(":")
        if user:
            username = unquote(user)
            password = unquote(secret) if colon else None
        elif secret:
            raise UrlError("URL has a password without a user name")
    else:
        hostport = authority
    if hostport.startswith("["):
        close = hostport.find("]")
        if close < 0:
            raise UrlError("URL has an unclosed '[' in its host")
        host_text, after = hostport[: close + 1], hostport[close + 1 :]
        if after and not after.startswith(":"):
            raise UrlError("bad port in URL")
        port_text = after[1:] if after else ""
    else:
        if hostport.count(":") > 1:
            raise UrlError("URL host has more than one ':' (an IPv6 address goes in brackets)")
        host_text, _, port_text = hostport.partition(":")
    if not host_text:
        raise UrlError("URL has no host")
    host = _host(host_text)
    port: int | None = None
    if port_text:
        if not port_text.isascii() or not port_text.isdigit():
            raise UrlError("bad port in URL: the port is not a number")
        port = int(port_text)
        if not 0 < port < 65536:
            raise UrlError("bad port in URL: out of range 1-65535")
    return username, password, host, port


def _param_spans(rest: str) -> list[tuple[str, int, int]]:
    """(name, start, end) of each credential parameter value in ``rest`` (path and query)."""
    spans: list[tuple[str, int, int]] = []
    question = rest.find("?")
    path, query_at = (rest, -1) if question < 0 else (rest[:question], question + 1)
    for match in _PATH_PARAM.finditer(path):
        if match.group(1).lower() in CREDENTIAL_PARAMS:
            spans.append((match.group(1), match.start(2), match.end(2)))
    if query_at >= 0:
        for match in _QUERY_PARAM.finditer(rest, query_at):
            if match.group(1).lower() in CREDENTIAL_PARAMS:
                spans.append((match.group(1), match.start(2), match.end(2)))
    return spans


def _redact_params(rest: str) -> tuple[str, tuple[Param, ...]]:
    """``rest`` with every non-empty credential value replaced by ``***``, and the values."""
    out: list[str] = []
    params: list[Param] = []
    last = 0
    for name, start, end in _param_spans(rest):
        value = rest[start:end]
        if not value:
            continue  # "password=" holds no secret (common on DVRs with an empty password)
        out.append(rest[last:start])
        out.append(PLACEHOLDER)
        last = end
        params.append(Param(name, None if value == PLACEHOLDER else value))
    out.append(rest[last:])
    return "".join(out), tuple(params)


def parse_url(raw: str, *, schemes: frozenset[str] = SCHEMES | TEST_SCHEMES) -> CameraUrl:
    """Check ``raw`` and split it into the stored form and its secrets. Raises UrlError."""
    _check_characters(raw)
    match = _SCHEME.match(raw)
    if match is None:
        raise UrlError(f"URL has no scheme; use one of {', '.join(sorted(SCHEMES))}")
    scheme = match.group(1).lower()
    if scheme not in schemes:
        raise UrlError(f"unsupported URL scheme {scheme!r}; use one of {', '.join(sorted(SCHEMES))}")
    rest = raw[match.end() :]
    if scheme in TEST_SCHEMES:
        if rest in ("", "//") or not rest.lstrip("/"):
            raise UrlError("file URL has no path")
        return CameraUrl(url=f"{scheme}:{rest}", endpoint=None)
    if not rest.startswith("//"):
        raise UrlError("URL has no host (write scheme://host/path)")
    rest = rest[2:]
    cut = _path_start(rest, 0)
    authority, tail = rest[:cut], rest[cut:]
    username, password, host, port = _split_authority(authority)
    tail, params = _redact_params(tail)
    netloc = _bracket(host) if port is None else f"{_bracket(host)}:{port}"
    endpoint = Endpoint(scheme, host, port or DEFAULT_PORTS[scheme])
    return CameraUrl(f"{scheme}://{netloc}{tail}", endpoint, username, password, params)


def restore_params(url: str, values: Sequence[str]) -> str:
    """The stored ``url`` with each ``***`` credential value replaced by the next of ``values``."""
    cut = _path_start(url, url.find("//") + 2 if "//" in url else 0)
    head, rest = url[:cut], url[cut:]
    spans = [(start, end) for _, start, end in _param_spans(rest) if rest[start:end] == PLACEHOLDER]
    if len(spans) != len(values):
        raise UrlError("the stored credential parameters do not match the URL")
    out: list[str] = [head]
    last = 0
    for (start, end), value in zip(spans, values, strict=True):
        out += [rest[last:start], value]
        last = end
    out.append(rest[last:])
    return "".join(out)


def with_host(url: str, address: str) -> str:
    """``url`` with its host replaced by ``address`` (an IP literal): connect to what was checked."""
    parts = urlsplit(url)
    netloc = _bracket(address) if parts.port is None else f"{_bracket(address)}:{parts.port}"
    if "@" in parts.netloc:
        netloc = parts.netloc.rsplit("@", 1)[0] + "@" + netloc
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def with_credentials(url: str, username: str | None, password: str | None) -> str:
    """``url`` with ``username:password@`` injected (percent-encoded); unchanged without a username.

    Any userinfo already in ``url`` is replaced.
    """
    if not username:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = _bracket(host) if parts.port is None else f"{_bracket(host)}:{parts.port}"
    userinfo = quote(username, safe="")
    if password:
        userinfo += ":" + quote(password, safe="")
    return urlunsplit((parts.scheme, f"{userinfo}@{netloc}", parts.path, parts.query, parts.fragment))


# scheme://userinfo@ — userinfo is anything up to the last '@' before the host part ends.
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s'\"]*@)")
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_PARAM_IN_TEXT = re.compile(r"(?i)(?<=[/;&?])(" + "|".join(sorted(CREDENTIAL_PARAMS)) + r")=[^&;/?#\s'\"]+")


def _redact_url_text(match: re.Match[str]) -> str:
    text = _USERINFO.sub(r"\g<scheme>", match.group(0))
    cut = _path_start(text, text.find("//") + 2)
    return text[:cut] + _redact_params(text[cut:])[0]


def redact(text: str) -> str:
    """``text`` with the userinfo of every URL in it removed and credential parameters as ``***``."""
    text = _URL_IN_TEXT.sub(_redact_url_text, text)
    return _PARAM_IN_TEXT.sub(lambda m: f"{m.group(1)}={PLACEHOLDER}", text)
