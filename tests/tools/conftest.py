"""Fixtures of the simulator tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.tools.rtsp_clients import Reader


@pytest.fixture
def readers() -> Iterator[list[Reader]]:
    started: list[Reader] = []
    yield started
    for reader in started:
        reader.halt()
    for reader in started:
        reader.close()
