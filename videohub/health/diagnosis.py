"""Picture diagnosis (视频质量诊断) of one camera's sampled keyframes.

Checks and the reason each reports:

========== ===================================================================== ==============
reason     finding                                                               needs baseline
========== ===================================================================== ==============
black      flat and (almost) black: no signal, lens cap, dead sensor              no
dark       much darker than this camera usually is                               yes
overexposed mostly blown out (sun in the lens, IR flood)                          no
frozen     keyframes unchanged over ``frozen_checks`` checks (hung encoder)       no
blurred    far less detail than usual (defocus, dirty or fogged lens)             yes
covered    flat picture or far less contrast than usual (sprayed, bagged lens)    no / yes
color_cast strongly coloured and far from this camera's usual colour (lost IR    yes
           filter, broken cable pair)
========== ===================================================================== ==============
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from videohub.health.baseline import Baseline
from videohub.health.metrics import Frame, FrameMetrics, downscale, measure
from videohub.settings.health import DiagnosisSettings

REASONS = ("black", "dark", "overexposed", "frozen", "blurred", "covered", "color_cast")
# Findings that make a picture useless whatever the scene: a camera whose picture shows one of these
# learns nothing from it, even before its baseline is ready.
_HARD = frozenset({"black", "overexposed", "frozen", "covered"})


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check's verdict with the measured value and what it was compared to."""

    name: str
    failed: bool
    value: float | None
    limit: float | None
    """The threshold the value was compared with (absolute, or derived from the baseline)."""
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "failed": self.failed,
            "value": None if self.value is None else round(self.value, 3),
            "limit": None if self.limit is None else round(self.limit, 3),
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class Diagnosis:
    metrics: FrameMetrics
    checks: tuple[CheckResult, ...]
    baseline: dict[str, float | int | bool] = field(default_factory=dict)

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.checks if c.failed)

    @property
    def healthy(self) -> bool:
        return not self.reasons

    def as_dict(self) -> dict[str, Any]:
        return {
            "reasons": list(self.reasons),
            "metrics": self.metrics.as_dict(),
            "checks": [c.as_dict() for c in self.checks],
            "baseline": self.baseline,
        }


class PictureDiagnoser:
    """Diagnoses the keyframes of one camera stream; owns that stream's baseline and frozen counter.

    Sits after the keyframe decoder in the health pipeline (Feed → keyframe sampler → here → state
    machine). Pure CPU work on a small image; callers run it in a worker thread.
    """

    def __init__(self, settings: DiagnosisSettings | None = None) -> None:
        self.settings = settings or DiagnosisSettings()
        self.baseline = Baseline(self.settings.baseline_samples, self.settings.baseline_alpha)
        self._previous: Frame | None = None
        self._unchanged = 0

    def diagnose(self, frame: Frame) -> Diagnosis:
        s = self.settings
        small = downscale(frame, s.width)
        m, gray = measure(small, self._previous)
        self._previous = gray
        b = self.baseline
        ready = b.ready

        black = m.luma_mean <= s.black_max_luma and m.luma_std <= s.black_max_std
        checks: list[CheckResult] = [
            CheckResult("black", black, m.luma_mean, s.black_max_luma, f"luma std {m.luma_std:.1f}")
        ]

        dark_limit = min(s.dark_max_luma, s.dark_ratio * b.luma_mean) if ready else None
        dark = not black and dark_limit is not None and m.luma_mean < dark_limit
        checks.append(
            CheckResult("dark", dark, m.luma_mean, dark_limit, "" if ready else "learning baseline")
        )

        over = m.luma_mean >= s.overexposed_min_luma and m.saturated_fraction >= s.overexposed_min_fraction
        checks.append(
            CheckResult(
                "overexposed",
                over,
                m.luma_mean,
                s.overexposed_min_luma,
                f"saturated {m.saturated_fraction:.0%}",
            )
        )

        # A flat picture: absolutely (a grey cover), or far below this camera's usual contrast.
        covered_limit = s.covered_max_std
        if ready:
            covered_limit = max(covered_limit, s.covered_ratio * b.luma_std)
        covered = not black and not over and m.luma_std <= covered_limit
        checks.append(CheckResult("covered", covered, m.luma_std, covered_limit))

        # Frozen counts unchanged keyframes; a black or flat picture is "unchanged" by nature and is
        # reported by its own reason instead.
        if m.changed is not None and m.changed <= s.frozen_max_changed:
            self._unchanged += 1
        else:
            self._unchanged = 0
        frozen = self._unchanged >= s.frozen_checks and not (black or covered)
        checks.append(
            CheckResult(
                "frozen", frozen, m.changed, s.frozen_max_changed, f"unchanged for {self._unchanged} checks"
            )
        )

        blur_limit = min(s.blur_max_sharpness, s.blur_ratio * b.sharpness) if ready else None
        blurred = not (black or covered) and blur_limit is not None and m.sharpness < blur_limit
        checks.append(
            CheckResult("blurred", blurred, m.sharpness, blur_limit, "" if ready else "learning baseline")
        )

        shift = b.chroma_shift(m) if ready else None
        cast = not black and shift is not None and m.chroma > s.cast_max_chroma and shift > s.cast_max_shift
        checks.append(
            CheckResult(
                "color_cast", cast, m.chroma, s.cast_max_chroma, "" if shift is None else f"shift {shift:.1f}"
            )
        )

        result = Diagnosis(m, tuple(checks), b.as_dict())
        reasons = set(result.reasons)
        if (ready and not reasons) or (not ready and not reasons & _HARD):
            b.learn(m)
        return result

    def reset(self) -> None:
        """Forget the previous keyframe (after a reconnect the next one is not comparable)."""
        self._previous = None
        self._unchanged = 0
