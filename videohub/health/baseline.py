"""What a camera's picture usually looks like, learned from its own healthy keyframes."""

from __future__ import annotations

from dataclasses import dataclass

from videohub.health.metrics import FrameMetrics


@dataclass(slots=True)
class Baseline:
    """Running means of one camera's picture metrics over its healthy checks.

    Sits beside a ``PictureDiagnoser``: the relative checks (too dark, blurred, low contrast, colour
    cast) compare a keyframe with this, so a naturally dark or plain scene is not flagged. The first
    ``samples_needed`` checks are averaged plainly; after that each new healthy check moves the means
    by ``alpha`` so slow drift (dusk, a season) is followed while a sudden change is flagged. Only
    checks without any finding are learned: a fault must never become the norm.
    """

    samples_needed: int
    alpha: float
    count: int = 0
    luma_mean: float = 0.0
    luma_std: float = 0.0
    sharpness: float = 0.0
    chroma_a: float = 0.0
    chroma_b: float = 0.0

    @property
    def ready(self) -> bool:
        return self.count >= self.samples_needed

    def learn(self, m: FrameMetrics) -> None:
        self.count += 1
        # Plain average while learning, then an exponential moving average.
        weight = 1.0 / self.count if self.count <= self.samples_needed else self.alpha
        self.luma_mean += weight * (m.luma_mean - self.luma_mean)
        self.luma_std += weight * (m.luma_std - self.luma_std)
        self.sharpness += weight * (m.sharpness - self.sharpness)
        self.chroma_a += weight * (m.chroma_a - self.chroma_a)
        self.chroma_b += weight * (m.chroma_b - self.chroma_b)

    def chroma_shift(self, m: FrameMetrics) -> float:
        """Distance in the Lab a/b plane between a keyframe's mean colour and the usual one."""
        return float(((m.chroma_a - self.chroma_a) ** 2 + (m.chroma_b - self.chroma_b) ** 2) ** 0.5)

    def as_dict(self) -> dict[str, float | int | bool]:
        return {
            "ready": self.ready,
            "samples": self.count,
            "luma_mean": round(self.luma_mean, 2),
            "luma_std": round(self.luma_std, 2),
            "sharpness": round(self.sharpness, 2),
            "chroma_a": round(self.chroma_a, 2),
            "chroma_b": round(self.chroma_b, 2),
        }
