"""``redis_url`` in its Sentinel form: what is accepted, and errors that name the part, never the password."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from videohub.redisurl import SentinelUrl, SentinelUrlError, check_redis_url, parse_sentinel_url
from videohub.settings import ConfigError, load_settings

SECRET = "s3cr3t-Pa55"


def test_a_full_sentinel_url_is_read() -> None:
    url = (
        f"redis+sentinel://app:{SECRET}@10.0.0.1,10.0.0.2:26380,[::1]:26381/vh-main/3"
        "?sentinel_password=s%40nt&sentinel_username=watch"
    )
    assert parse_sentinel_url(url) == SentinelUrl(
        sentinels=(("10.0.0.1", 26379), ("10.0.0.2", 26380), ("::1", 26381)),
        service="vh-main",
        db=3,
        username="app",
        password=SECRET,
        sentinel_username="watch",
        sentinel_password="s@nt",
    )


def test_a_short_sentinel_url_has_defaults() -> None:
    parsed = parse_sentinel_url("redis+sentinel://sentinel.local/mymaster")
    assert parsed.sentinels == (("sentinel.local", 26379),)
    assert (parsed.service, parsed.db) == ("mymaster", 0)
    assert parsed.password is None and parsed.sentinel_password is None
    # An escaped password keeps its "/", "@" and ",".
    assert parse_sentinel_url("redis+sentinel://:a%2Fb%40c%2Cd@h:1/m").password == "a/b@c,d"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        (f"redis+sentinel://:{SECRET}@h1:26379", "service name"),
        (f"redis+sentinel://:{SECRET}@h1:26379/", "service name"),
        (f"redis+sentinel://:{SECRET}@h1:port/m", "port must be a number"),
        (f"redis+sentinel://:{SECRET}@h1:26379,,h2/m", "no empty one"),
        (f"redis+sentinel://:{SECRET}@h1/m/x", "must be a number"),
        (f"redis+sentinel://:{SECRET}@h1/m/0/extra", "/<service>[/<db>]"),
        (f"redis+sentinel://:{SECRET}@h1/m?password={SECRET}", "unknown option 'password'"),
        (f"redis+sentinel://h1/m?{SECRET}", "unknown option (known"),
        (f"redis+sentinel://:{SECRET}@h1/m%20x", "service name may hold"),
        (f"redis+sentinel://:{SECRET}@h1/m\r\nSET", "control characters"),
        # A password with an unescaped "/": the rest of it is read as hosts and path.
        ("redis+sentinel://:pa/ss-Secret@h1/m", "Sentinel address 1"),
        (f"redis+sentinel://:{SECRET}@h1:26379#x/m", "is not host[:port]"),
    ],
)
def test_a_bad_sentinel_url_names_the_problem_and_not_the_password(url: str, says: str) -> None:
    with pytest.raises(SentinelUrlError) as caught:
        parse_sentinel_url(url)
    assert says in str(caught.value)
    assert SECRET not in str(caught.value) and "ss-Secret" not in str(caught.value)


@pytest.mark.parametrize(
    "url", ["redis://h:6379/0", "rediss://:p@h:6380/1", "unix:///run/valkey.sock", "redis+sentinel://h/m"]
)
def test_every_supported_scheme_passes_the_check(url: str) -> None:
    check_redis_url(url)


def test_settings_take_a_sentinel_url_and_refuse_a_bad_one(monkeypatch: pytest.MonkeyPatch) -> None:
    good = f"redis+sentinel://:{SECRET}@127.0.0.1:26379,127.0.0.2:26379/vh/0"
    monkeypatch.setenv("VIDEOHUB_REDIS_URL", good)
    assert load_settings().redis_url == good
    monkeypatch.setenv("VIDEOHUB_REDIS_URL", f"redis+sentinel://:{SECRET}@127.0.0.1:26379")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert [path for path, _ in caught.value.problems] == ["redis_url"]
    assert "service name" in str(caught.value) and SECRET not in str(caught.value)
    monkeypatch.setenv("VIDEOHUB_REDIS_URL", f"sentinel://:{SECRET}@h/m")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "redis+sentinel://" in str(caught.value) and SECRET not in str(caught.value)


def test_validate_config_reports_a_bad_sentinel_url_without_its_password() -> None:
    env = {**os.environ, "VIDEOHUB_REDIS_URL": f"redis+sentinel://:{SECRET}@h1:99999/vh"}
    result = subprocess.run(
        [sys.executable, "-m", "videohub.cli", "validate-config"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 1
    assert "redis_url: Sentinel address 1: the port must be a number" in result.stderr, result.stderr
    assert SECRET not in result.stderr + result.stdout
