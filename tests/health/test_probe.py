"""Probing a camera of the simulator: one keyframe for diagnosis, or the reason it failed."""

from __future__ import annotations

import pytest

from tests.fixtures.camsim import CameraSimulator
from videohub.health.diagnosis import PictureDiagnoser
from videohub.health.probe import probe_async, with_credentials

pytestmark = pytest.mark.media


async def test_probe_gets_a_keyframe_and_black_mount_is_black(camsim: CameraSimulator) -> None:
    ok = await probe_async(camsim.rtsp_url("cb"), give_up_after=10)
    assert ok.ok and ok.frame is not None and ok.frame.shape[1] == 160
    assert PictureDiagnoser().diagnose(ok.frame).healthy
    black = await probe_async(camsim.rtsp_url("black"), give_up_after=10)
    assert black.frame is not None
    assert PictureDiagnoser().diagnose(black.frame).reasons == ("black",)


async def test_probe_reasons_for_unreachable_cameras(camsim: CameraSimulator) -> None:
    assert (await probe_async(camsim.rtsp_url("no-such-mount"), give_up_after=10)).error == "not_found"
    assert (
        await probe_async(camsim.auth_url("basic", credentials=False), give_up_after=10)
    ).error == "auth_failed"
    assert (await probe_async("rtsp://127.0.0.1:1/x", give_up_after=5)).error == "refused"
    url = with_credentials(
        camsim.auth_url("basic", credentials=False), camsim.auth_user, camsim.auth_password
    )
    assert (await probe_async(url, give_up_after=10)).ok


def test_credentials_are_put_into_the_url_escaped() -> None:
    assert with_credentials("rtsp://h:554/a", "u", "p@ss:w") == "rtsp://u:p%40ss%3Aw@h:554/a"
    assert with_credentials("rtsp://h/a", None, None) == "rtsp://h/a"
