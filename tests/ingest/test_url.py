"""The camera URL check (ingest.url) and the network policy (ingest.netpolicy), as pure functions."""

from __future__ import annotations

import pytest

from ingest.netpolicy import BlockedUrl, NetworkPolicy, resolve
from ingest.source import Login, target_url
from ingest.url import Endpoint, Param, UrlError, parse_url, redact, restore_params


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("rtsp://10.0.0.5/x\r\nHSET vh:user:me role admin", "control character (U+000D) at position 18"),
        ("rtsp://10.0.0.5/x\nQUIT", "control character (U+000A)"),
        ("rtsp://10.0.0.5/x\x00", "control character (U+0000)"),
        ("rtsp://10.0.0.5/x\ty", "control character (U+0009)"),
        ("rtsp://10.0.0.5/x\x7f", "control character (U+007F)"),
        ("rtsp://10.0.0.5/a b", "whitespace (U+0020)"),
        (" rtsp://10.0.0.5/a", "whitespace (U+0020) at position 1"),
        ("rtsp://10.0.0.5/a\u3000", "whitespace (U+3000)"),
        ("rtsp://10.0.0.5/摄像头", "non-ASCII character (U+6444)"),
        ("rtsp://摄像头.local/a", "non-ASCII character"),
        ("rtsp://10.0.0.5/a'b", 'the character "\'"'),
        ('rtsp://10.0.0.5/a"b', "the character '\"'"),
        ("rtsp://10.0.0.5/a#frag", "no fragment"),
        ("rtsp://10.0.0.5/a%0d%0aQUIT", "percent-encoded control character"),
        ("rtsp://10.0.0.5/a%7F", "percent-encoded control character"),
        ("rtsp://10.0.0.5/a%zz", "not followed by two hex digits"),
        ("rtsp://10.0.0.5/a%2", "not followed by two hex digits"),
        ("ftp://10.0.0.5/a", "unsupported URL scheme 'ftp'"),
        ("rtmpt://10.0.0.5/live", "unsupported URL scheme 'rtmpt'"),
        ("gopher://10.0.0.5/live", "unsupported URL scheme 'gopher'"),
        ("10.0.0.5/a", "no scheme"),
        ("rtsp:/10.0.0.5/a", "no host"),
        ("rtsp:///nohost", "no host"),
        ("rtsp://10.0.0.5:0/a", "out of range"),
        ("rtsp://10.0.0.5:65536/a", "out of range"),
        ("rtsp://10.0.0.5:x/a", "not a number"),
        ("rtsp://fe80::1/a", "more than one ':'"),
        ("rtsp://[fe80::1%25eth0]/a", "zone ids"),
        ("rtsp://[fe80::zz]/a", "not a valid IPv6"),
        ("rtsp://[fe80::1/a", "unclosed"),
        ("rtsp://127.1/a", "four decimal numbers (127.0.0.1)"),
        ("rtsp://0x7f000001/a", "four decimal numbers (127.0.0.1)"),
        ("rtsp://2130706433/a", "four decimal numbers (127.0.0.1)"),
        ("rtsp://010.0.0.1/a", "four decimal numbers (8.0.0.1)"),
        ("rtsp://1.2.3.999/a", "not a valid IPv4"),
        ("rtsp://-cam.local/a", "not a valid host name"),
        ("rtsp://:secret@10.0.0.5/a", "password without a user name"),
        ("file:", "file URL has no path"),
    ],
)
def test_hostile_and_broken_urls_are_refused_with_a_reason(raw: str, words: str) -> None:
    with pytest.raises(UrlError) as info:
        parse_url(raw)
    assert words in str(info.value)


def test_an_error_never_quotes_a_secret() -> None:
    for raw in (
        "rtsp://admin:S3cret\r\n@10.0.0.5/a",
        "rtsp://10.0.0.5/password=S3cret x",
        "rtsp://u:S3cret@h:bad/",
    ):
        with pytest.raises(UrlError) as info:
            parse_url(raw)
        assert "S3cret" not in str(info.value)


@pytest.mark.parametrize(
    ("raw", "stored", "endpoint"),
    [
        (
            "RTSP://Cam-1.Meili.LOCAL/Streaming/Channels/101",
            "rtsp://cam-1.meili.local/Streaming/Channels/101",
            Endpoint("rtsp", "cam-1.meili.local", 554),
        ),
        ("rtsp://10.0.0.5:0554/live", "rtsp://10.0.0.5:554/live", Endpoint("rtsp", "10.0.0.5", 554)),
        ("rtsp://10.0.0.5:/live", "rtsp://10.0.0.5/live", Endpoint("rtsp", "10.0.0.5", 554)),
        ("rtsps://cam.local.", "rtsps://cam.local", Endpoint("rtsps", "cam.local", 322)),
        ("rtmp://10.0.0.5/live/cam1", "rtmp://10.0.0.5/live/cam1", Endpoint("rtmp", "10.0.0.5", 1935)),
        ("http://10.0.0.5/video.mjpg", "http://10.0.0.5/video.mjpg", Endpoint("http", "10.0.0.5", 80)),
        ("https://10.0.0.5:8443/v", "https://10.0.0.5:8443/v", Endpoint("https", "10.0.0.5", 8443)),
        ("rtsp://[FE80:0:0::1]:8554/a", "rtsp://[fe80::1]:8554/a", Endpoint("rtsp", "fe80::1", 8554)),
        ("rtsp://[::ffff:127.0.0.1]/a", "rtsp://[::ffff:7f00:1]/a", Endpoint("rtsp", "::ffff:7f00:1", 554)),
        # Percent-escapes and the path's case are the camera's business: kept byte for byte.
        (
            "rtsp://10.0.0.5/Live%2fMain?Name=%E6%91%84",
            "rtsp://10.0.0.5/Live%2fMain?Name=%E6%91%84",
            Endpoint("rtsp", "10.0.0.5", 554),
        ),
        ("rtsp://10.0.0.5", "rtsp://10.0.0.5", Endpoint("rtsp", "10.0.0.5", 554)),
        ("FILE:///tmp/clip.mp4", "file:///tmp/clip.mp4", None),
    ],
)
def test_urls_are_normalized(raw: str, stored: str, endpoint: Endpoint | None) -> None:
    parsed = parse_url(raw)
    assert parsed.url == stored and parsed.endpoint == endpoint
    assert parse_url(parsed.url).url == parsed.url  # the stored form is a fixed point


def test_userinfo_is_split_off_and_decoded() -> None:
    parsed = parse_url("rtsp://op%40line:p%3Aw%2Fd@10.0.0.5:554/ch1")
    assert parsed.url == "rtsp://10.0.0.5:554/ch1"
    assert (parsed.username, parsed.password) == ("op@line", "p:w/d")
    assert "p:w/d" not in repr(parsed)
    assert parse_url("rtsp://admin@10.0.0.5/x").password is None


@pytest.mark.parametrize(
    ("raw", "stored", "params"),
    [
        (
            "rtsp://10.0.0.7:554/user=admin&password=S3cret&channel=1&stream=0.sdp",
            "rtsp://10.0.0.7:554/user=***&password=***&channel=1&stream=0.sdp",
            [("user", "admin"), ("password", "S3cret")],
        ),
        (
            "rtsp://10.0.0.7/cam;USER=admin;Pwd=S3cret/live",
            "rtsp://10.0.0.7/cam;USER=***;Pwd=***/live",
            [("USER", "admin"), ("Pwd", "S3cret")],
        ),
        (
            "rtsp://10.0.0.7/live?password=S3cret",
            "rtsp://10.0.0.7/live?password=***",
            [("password", "S3cret")],
        ),
        (  # in the query a value may hold '/' and '?'
            "http://10.0.0.7/snap.cgi?chn=1&token=a/b?c&key=k1;auth=x",
            "http://10.0.0.7/snap.cgi?chn=1&token=***&key=***;auth=***",
            [("token", "a/b?c"), ("key", "k1"), ("auth", "x")],
        ),
        (  # XMEye's '_' separators: everything after user= is secret, over-redacted rather than leaked
            "rtsp://10.0.0.7/user=admin_password=S3cret_channel=1_stream=0.sdp?real_stream",
            "rtsp://10.0.0.7/user=***?real_stream",
            [("user", "admin_password=S3cret_channel=1_stream=0.sdp")],
        ),
        (
            "rtsp://10.0.0.7/user=admin&password=&channel=1",
            "rtsp://10.0.0.7/user=***&password=&channel=1",
            [("user", "admin")],
        ),
        (
            "rtsp://10.0.0.7/monkey=1&passport=2?keyframe=3",
            "rtsp://10.0.0.7/monkey=1&passport=2?keyframe=3",
            [],
        ),
        ("rtsp://10.0.0.7/live?password=***", "rtsp://10.0.0.7/live?password=***", [("password", None)]),
    ],
)
def test_credential_parameters_are_split_off(
    raw: str, stored: str, params: list[tuple[str, str | None]]
) -> None:
    parsed = parse_url(raw)
    assert parsed.url == stored
    assert parsed.params == tuple(Param(n, v) for n, v in params)
    assert "S3cret" not in repr(parsed)
    values = [v for _, v in params if v is not None]
    if len(values) == len(params):
        assert restore_params(parsed.url, values) == raw  # put back exactly where they were


def test_restore_refuses_a_count_that_does_not_match() -> None:
    with pytest.raises(UrlError):
        restore_params("rtsp://10.0.0.7/user=***&password=***", ["admin"])


def test_redact_cleans_urls_and_parameters_in_any_text() -> None:
    text = (
        "Invalid data found when processing input: 'rtsp://admin:S3cret@10.0.0.7:554/user=admin&"
        "password=S3cret&channel=1&stream=0.sdp' (and http://10.0.0.8/a?token=a/b/S3cret&x=1); "
        "retry with ;pwd=S3cret"
    )
    clean = redact(text)
    assert "S3cret" not in clean and "admin:" not in clean
    assert "rtsp://10.0.0.7:554/user=***&password=***&channel=1&stream=0.sdp'" in clean
    assert "http://10.0.0.8/a?token=***&x=1)" in clean
    assert redact("rtsp://10.0.0.7/live?password=") == "rtsp://10.0.0.7/live?password="


def policy(**kwargs: object) -> NetworkPolicy:
    return NetworkPolicy.build(**kwargs)  # type: ignore[arg-type]  # keyword forwarding in a test helper


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("rtsp://203.0.113.5/live", "allowed_networks"),
        ("rtsp://8.8.8.8/live", "allowed_networks"),
        ("rtsp://[2001:db8::5]/live", "allowed_networks"),
        ("rtsp://[::ffff:8.8.8.8]/live", "allowed_networks"),
        ("rtsp://127.0.0.1:8000/x", "service"),
        ("rtsp://[::1]:8000/x", "service"),
        ("rtsp://[::ffff:127.0.0.1]:8000/x", "service"),
        ("rtsp://127.0.0.7:6380/x", "service"),
        ("rtsp://localhost:8000/x", "service"),
        ("rtsp://10.9.9.9:6379/x", "service"),
        ("rtsp://does-not-exist.invalid/x", "resolve"),
    ],
)
def test_the_policy_refuses_public_addresses_and_the_service_itself(url: str, rule: str) -> None:
    checks = policy(service=[("10.9.9.9", 6379)], service_local_ports=[8000, 6380])
    endpoint = parse_url(url).endpoint
    assert endpoint is not None
    with pytest.raises(BlockedUrl) as info:
        checks.check(endpoint)
    assert info.value.rule == rule


def test_the_policy_lets_cameras_on_the_lan_through() -> None:
    checks = policy(service=[("10.9.9.9", 6379)], service_local_ports=[8000])
    for url in (
        "rtsp://10.0.0.5/x",
        "rtsp://192.168.1.64:554/x",
        "rtsp://172.16.3.3/x",
        "rtsp://[fe80::1]/x",
        "rtsp://127.0.0.1:8554/x",
        "rtsp://10.9.9.9:554/x",
        "rtsp://localhost:8554/x",
    ):
        endpoint = parse_url(url).endpoint
        assert endpoint is not None
        assert checks.check(endpoint)


def test_the_host_list_narrows_names() -> None:
    checks = policy(allowed_hosts=["*.cam.meili.local", "10.20.*"])
    assert checks.check(Endpoint("rtsp", "10.20.1.5", 554)) == ["10.20.1.5"]
    for host in ("10.21.1.5", "nvr.meili.local"):
        with pytest.raises(BlockedUrl) as info:
            checks.check(Endpoint("rtsp", host, 554))
        assert info.value.rule == "allowed_hosts"


def test_target_url_puts_secrets_back_only_for_their_host() -> None:
    stored = "rtsp://127.0.0.1:8554/user=***&password=***&channel=1?key=***"
    endpoint = Endpoint("rtsp", "127.0.0.1", 8554)
    login = Login("admin", "p@ss", params=("admin", "S3cret", "k1"), endpoint=endpoint)
    assert target_url(stored, login, policy()) == (
        "rtsp://admin:p%40ss@127.0.0.1:8554/user=admin&password=S3cret&channel=1?key=k1"
    )
    # The same secrets for a URL on another host (or port, or scheme) are refused, not sent.
    for other in (
        "rtsp://127.0.0.2:8554/user=***&password=***&channel=1?key=***",
        "rtsp://127.0.0.1:8555/user=***&password=***&channel=1?key=***",
        "rtsps://127.0.0.1:8554/user=***&password=***&channel=1?key=***",
    ):
        with pytest.raises(UrlError, match="belong to"):
            target_url(other, login, policy())
    with pytest.raises(UrlError, match="no stored value"):
        target_url(stored, None, policy())
    # A stored value that would change the URL's shape is refused.
    bent = Login(None, params=("admin/../x", "S3cret", "k1"), endpoint=endpoint)
    with pytest.raises(UrlError, match="does not fit"):
        target_url(stored, bent, policy())


def test_target_url_dials_the_address_it_checked() -> None:
    assert target_url("rtsp://localhost:8554/live", None, policy()).startswith(
        ("rtsp://127.0.0.1:8554/live", "rtsp://[::1]:8554/live")
    )
    assert target_url("file:///tmp/clip.mp4", None, policy()) == "file:///tmp/clip.mp4"
    with pytest.raises(UrlError, match="scheme 'file'"):
        target_url("file:///tmp/clip.mp4", None, policy(), allow_files=False)


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST.", "nvr.localhost"])
def test_localhost_names_are_loopback_without_a_hosts_file(host: str) -> None:
    # A minimal Debian root has no /etc/hosts; RFC 6761 names still mean this machine.
    assert resolve(host, 554) == ["127.0.0.1", "::1"]
