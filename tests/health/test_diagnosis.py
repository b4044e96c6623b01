"""Picture checks on synthetic keyframes: faults are found; healthy (also dark or plain) scenes are not."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from videohub.health.diagnosis import PictureDiagnoser
from videohub.health.metrics import Frame
from videohub.settings.health import DiagnosisSettings

W, H = 640, 360


def scene(step: int, *, gain: float = 1.0, offset: float = 0.0, seed: int = 0) -> Frame:
    """A textured street-like scene with a moving object and sensor noise (BGR)."""
    rng = np.random.default_rng(seed)
    img = np.full((H, W, 3), 110, np.float32)
    for _ in range(80):
        x, y = int(rng.integers(0, W - 60)), int(rng.integers(0, H - 60))
        color = [float(c) for c in rng.integers(0, 256, 3)]
        cv2.rectangle(img, (x, y), (x + int(rng.integers(10, 80)), y + int(rng.integers(10, 80))), color, -1)
    cx = 40 + (step * 37) % (W - 80)
    cv2.circle(img, (cx, H // 2), 30, (250.0, 250.0, 250.0), -1)
    noise = np.random.default_rng(1000 + step).normal(0, 3, img.shape)
    out = np.clip(img * gain + offset + noise, 0, 255)
    return out.astype(np.uint8)


def u8(img: npt.NDArray[Any]) -> Frame:
    return np.asarray(img.clip(0, 255), dtype=np.uint8)


def learn(d: PictureDiagnoser, frames: int = 5) -> None:
    for i in range(frames):
        result = d.diagnose(scene(i))
        assert result.healthy, result.reasons


def test_healthy_scene_passes_every_check_and_carries_measured_values() -> None:
    d = PictureDiagnoser()
    for i in range(8):
        result = d.diagnose(scene(i))
        assert result.reasons == ()
    body = result.as_dict()
    assert {c["name"] for c in body["checks"]} == {
        "black",
        "dark",
        "overexposed",
        "frozen",
        "blurred",
        "covered",
        "color_cast",
    }
    assert body["metrics"]["luma_mean"] > 50
    assert body["baseline"]["ready"] is True


def test_dark_but_healthy_scene_does_not_alarm() -> None:
    d = PictureDiagnoser()
    for i in range(12):
        result = d.diagnose(scene(i, gain=0.2))
        assert result.metrics.luma_mean < 35  # really dark, as a street at night
        assert result.healthy, result.as_dict()


def test_black_picture_is_black_from_the_first_check() -> None:
    d = PictureDiagnoser()
    black = np.random.default_rng(0).normal(4, 1.5, (H, W, 3)).clip(0, 255).astype(np.uint8)
    assert d.diagnose(black).reasons == ("black",)


def test_sudden_darkness_is_dark_relative_to_the_learned_baseline() -> None:
    d = PictureDiagnoser()
    learn(d)
    result = d.diagnose(scene(9, gain=0.3))
    assert "dark" in result.reasons
    assert "black" not in result.reasons


def test_overexposed_picture() -> None:
    d = PictureDiagnoser()
    white = scene(0, gain=0.05, offset=250)
    assert "overexposed" in d.diagnose(white).reasons


def test_frozen_after_unchanged_keyframes_and_recovers_when_moving() -> None:
    settings = DiagnosisSettings(frozen_checks=3)
    d = PictureDiagnoser(settings)
    learn(d)
    still = scene(20)
    reasons = [d.diagnose(still).reasons for _ in range(4)]
    # First still frame differs from the last moving one; then 3 unchanged checks.
    assert reasons[:3] == [(), (), ()]
    assert reasons[3] == ("frozen",)
    frozen = d.diagnose(still)
    assert frozen.reasons == ("frozen",)
    assert d.diagnose(scene(21)).healthy


def osd(img: Frame, second: int) -> Frame:
    """Burn in a camera's OSD clock, as most cameras do."""
    out = img.copy()
    cv2.putText(
        out, f"2026-11-26 08:{second // 60:02d}:{second % 60:02d}", (20, 40), 0, 1.0, (255, 255, 255), 2
    )
    return out


def test_static_noisy_scene_with_running_osd_clock_is_not_frozen() -> None:
    d = PictureDiagnoser()
    for i in range(8):
        # Same layout each time, only the sensor noise and the clock change (an empty corridor).
        img = u8(scene(0).astype(np.float32) + np.random.default_rng(i).normal(0, 4, (H, W, 3)))
        assert d.diagnose(osd(img, 10 * i)).healthy


def test_static_noisy_scene_with_stopped_osd_clock_is_frozen() -> None:
    d = PictureDiagnoser()
    reasons = []
    for i in range(5):
        img = u8(scene(0).astype(np.float32) + np.random.default_rng(i).normal(0, 4, (H, W, 3)))
        reasons.append(d.diagnose(osd(img, 0)).reasons)
    assert reasons[-1] == ("frozen",)


def test_blurred_relative_to_baseline() -> None:
    d = PictureDiagnoser()
    learn(d)
    blurred = u8(cv2.GaussianBlur(scene(7), (0, 0), 12))
    result = d.diagnose(blurred)
    assert "blurred" in result.reasons
    check = next(c for c in result.checks if c.name == "blurred")
    assert check.value is not None and check.limit is not None and check.value < check.limit


def test_plain_wall_scene_is_not_blurred() -> None:
    d = PictureDiagnoser()
    for i in range(8):
        wall = np.full((H, W, 3), 150, np.float32)
        wall += np.linspace(-25, 25, W, dtype=np.float32)[None, :, None]  # lighting gradient
        wall += np.random.default_rng(i).normal(0, 2, wall.shape)
        assert d.diagnose(osd(u8(wall), 10 * i)).healthy


def test_covered_lens_flat_grey() -> None:
    d = PictureDiagnoser()
    grey = np.random.default_rng(0).normal(120, 1.0, (H, W, 3)).clip(0, 255).astype(np.uint8)
    assert d.diagnose(grey).reasons == ("covered",)


def test_low_contrast_relative_to_baseline_is_covered() -> None:
    d = PictureDiagnoser()
    learn(d)
    fogged = scene(8, gain=0.15, offset=110)
    assert "covered" in d.diagnose(fogged).reasons


def test_color_cast_relative_to_baseline() -> None:
    d = PictureDiagnoser()
    learn(d)
    img = scene(6).astype(np.int16)
    img[:, :, 2] += 90  # red channel
    img[:, :, 0] -= 40
    result = d.diagnose(u8(img))
    assert "color_cast" in result.reasons


def test_naturally_green_scene_is_not_a_color_cast() -> None:
    d = PictureDiagnoser()
    for i in range(8):
        img = scene(i).astype(np.int16)
        img[:, :, 1] += 70
        img[:, :, 2] -= 40
        assert d.diagnose(u8(img)).healthy


def test_grey_frames_are_accepted() -> None:
    d = PictureDiagnoser()
    gray = u8(cv2.cvtColor(scene(0), cv2.COLOR_BGR2GRAY))
    assert d.diagnose(gray).healthy


def test_fault_is_never_learned_as_normal() -> None:
    d = PictureDiagnoser()
    learn(d)
    for i in range(60):
        assert "dark" in d.diagnose(scene(30 + i, gain=0.3)).reasons
