"""Numbers measured on one decoded keyframe (downscaled), the input of every picture check."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np
import numpy.typing as npt

CHANGE_DELTA = 12

Frame = npt.NDArray[np.uint8]
"""A decoded picture: BGR ``(h, w, 3)`` or grey ``(h, w)``, uint8."""


@dataclass(frozen=True, slots=True)
class FrameMetrics:
    luma_mean: float
    """Mean brightness, 0-255."""
    luma_std: float
    """Contrast: standard deviation of brightness."""
    saturated_fraction: float
    """Fraction of pixels at or above 250 (blown out)."""
    sharpness: float
    """Variance of the Laplacian of the brightness (low = blurred or plain)."""
    chroma_a: float
    """Mean Lab a* offset from grey (green- / red+), about -128..127."""
    chroma_b: float
    """Mean Lab b* offset from grey (blue- / yellow+)."""
    diff: float | None
    """Mean absolute brightness difference to the previous checked keyframe (None on the first)."""
    changed: float | None
    """Fraction of pixels whose brightness changed by more than ``CHANGE_DELTA`` since the previous
    keyframe: encoder and sensor noise stay below it, any real motion (even an OSD clock) does not."""

    @property
    def chroma(self) -> float:
        return float((self.chroma_a**2 + self.chroma_b**2) ** 0.5)

    def as_dict(self) -> dict[str, float | None]:
        out: dict[str, float | None] = {
            k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()
        }
        out["chroma"] = round(self.chroma, 3)
        return out


def downscale(frame: Frame, width: int) -> Frame:
    """Resize to ``width`` keeping the aspect ratio (area averaging); never upscales."""
    h, w = frame.shape[:2]
    if w <= width:
        return frame
    height = max(1, round(h * width / w))
    return np.asarray(cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA), dtype=np.uint8)


def to_gray(frame: Frame) -> Frame:
    if frame.ndim == 2:
        return frame
    return np.asarray(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), dtype=np.uint8)


def measure(small: Frame, previous_gray: Frame | None) -> tuple[FrameMetrics, Frame]:
    """Measure a downscaled frame; returns the metrics and its grey image (for the next diff)."""
    gray = to_gray(small)
    mean, std = cv2.meanStdDev(gray)
    saturated = float(np.count_nonzero(gray >= 250)) / gray.size
    sharpness = float(cv2.Laplacian(gray, cv2.CV_64F).var())
    if small.ndim == 3:
        lab = cv2.cvtColor(small, cv2.COLOR_BGR2LAB)
        a_mean = float(lab[:, :, 1].mean()) - 128.0
        b_mean = float(lab[:, :, 2].mean()) - 128.0
    else:
        a_mean = b_mean = 0.0
    diff: float | None = None
    changed: float | None = None
    if previous_gray is not None and previous_gray.shape == gray.shape:
        delta = cv2.absdiff(gray, previous_gray)
        diff = float(delta.mean())
        changed = float(np.count_nonzero(delta > CHANGE_DELTA)) / delta.size
    metrics = FrameMetrics(
        luma_mean=float(mean[0][0]),
        luma_std=float(std[0][0]),
        saturated_fraction=saturated,
        sharpness=sharpness,
        chroma_a=a_mean,
        chroma_b=b_mean,
        diff=diff,
        changed=changed,
    )
    return metrics, gray
