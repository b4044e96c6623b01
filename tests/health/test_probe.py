"""Probing a camera of the simulator: one keyframe for diagnosis, or the reason it failed."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from ingest.probe import probe, probe_async
from ingest.url import with_credentials
from tests.fixtures.camsim import CameraSimulator
from videohub.health.diagnosis import PictureDiagnoser

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


def test_many_cameras_behind_one_mount_probed_at_once_all_get_a_keyframe(
    camsim_factory: Callable[..., CameraSimulator],
) -> None:
    # As in the probe cycle: distinct camera URLs sharing one encoder, probed many at a time.
    sim = camsim_factory(preset="none", mounts=["nvr:profile=baseline,width=320,height=180,fps=10,gop=1"])
    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(lambda i: probe(sim.rtsp_url("nvr", {"cam": i}), timeout=10), range(200)))
    assert [r.error for r in results if not r.ok] == []
    assert all(r.width == 320 and r.frame is not None and r.frame.shape[1] == 160 for r in results)
    assert sim.alive
