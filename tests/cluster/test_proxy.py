"""The cuttable TCP proxy the Redis-link test relies on (tests/fixtures/proxy.py), on a real Valkey."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.fixtures.cluster import wait_for
from tests.fixtures.proxy import CuttableProxy
from tests.fixtures.sentinel import Node
from tests.fixtures.service import free_port


@pytest.fixture
def valkey(tmp_path: Path) -> Node:
    port = free_port()
    node = Node("valkey", port, tmp_path, ["--port", str(port), "--bind", "127.0.0.1", "--save", ""])
    node.start()
    wait_for(lambda: _pings(port), 10, "valkey answers")
    return node


def _pings(port: int) -> bool:
    try:
        return bool(redis.Redis(host="127.0.0.1", port=port, socket_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


def test_a_cut_link_is_silent_and_a_restored_one_delivers_what_waited(valkey: Node) -> None:
    proxy = CuttableProxy(("127.0.0.1", valkey.port))
    try:
        client = redis.Redis(host="127.0.0.1", port=proxy.port, socket_timeout=1, retry=Retry(NoBackoff(), 0))
        assert client.ping()
        key = f"k{secrets.token_hex(4)}"
        proxy.cut()
        # Like a firewall dropping packets: no answer and no reset, the command times out.
        with pytest.raises(redis.TimeoutError):
            client.set(key, "during the cut")
        # A new connection made while cut hears nothing either.
        fresh = redis.Redis(host="127.0.0.1", port=proxy.port, socket_timeout=1, retry=Retry(NoBackoff(), 0))
        with pytest.raises(redis.TimeoutError):
            fresh.ping()
        proxy.restore()
        # The write sent during the cut reached the server once restored (TCP would retransmit it).
        direct = redis.Redis(host="127.0.0.1", port=valkey.port, socket_timeout=2)
        for _ in range(20):
            if direct.get(key) is not None:
                break
            direct.ping()
        assert direct.get(key) == b"during the cut"
        assert redis.Redis(host="127.0.0.1", port=proxy.port, socket_timeout=2).ping()
    finally:
        proxy.close()
        valkey.stop()
