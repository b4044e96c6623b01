"""Settings for feed health (state machine, picture diagnosis, probing); alerts are in ``settings.alerts``.

Defaults follow issue 5: offline after 3 s without packets for ``always_on`` cameras, one keyframe
diagnosed per 10 s per feed, ``on_demand`` cameras probed every 5 minutes.
"""

from __future__ import annotations

from pydantic import Field

from videohub.settings.base import Section


class DiagnosisSettings(Section):
    """Thresholds of the picture checks (see ``videohub.health.diagnosis``).

    Absolute limits flag a picture from the first check; the ``*_ratio`` limits compare with the
    camera's own learned baseline, so a naturally dark or plain scene is not flagged.
    """

    width: int = Field(
        160, ge=32, le=1920, description="Width (px) keyframes are downscaled to before checks."
    )
    baseline_samples: int = Field(
        3, ge=1, le=1000, description="Healthy checks a camera needs before its baseline is used."
    )
    baseline_alpha: float = Field(
        0.05,
        gt=0,
        le=1,
        description="Weight of each new healthy check in the baseline (slow drift such as dusk is followed).",
    )
    black_max_luma: float = Field(
        16.0, ge=0, le=255, description="Mean luma at or below which a flat picture is black."
    )
    black_max_std: float = Field(
        6.0, ge=0, le=128, description="Luma std-dev at or below which a dark picture is flat."
    )
    dark_ratio: float = Field(
        0.35, gt=0, lt=1, description="Too dark: mean luma below this fraction of the camera's baseline."
    )
    dark_max_luma: float = Field(
        50.0, ge=0, le=255, description="Too dark only when the mean luma is also below this absolute level."
    )
    overexposed_min_luma: float = Field(
        235.0, ge=0, le=255, description="Mean luma at or above which a picture is overexposed."
    )
    overexposed_min_fraction: float = Field(
        0.6, gt=0, le=1, description="...and the fraction of saturated pixels (>= 250) at least this."
    )
    frozen_max_changed: float = Field(
        0.0002,
        ge=0,
        le=1,
        description="Keyframes are the same when at most this fraction of pixels changed (by > 12 levels).",
    )
    frozen_checks: int = Field(
        3, ge=1, le=100, description="Consecutive unchanged keyframes (checks) before a picture is frozen."
    )
    blur_ratio: float = Field(
        0.25, gt=0, lt=1, description="Blurred: variance of Laplacian below this fraction of the baseline."
    )
    blur_max_sharpness: float = Field(
        150.0,
        ge=0,
        description="Blurred only when the variance of Laplacian is also below this absolute value.",
    )
    covered_max_std: float = Field(
        4.0, ge=0, le=128, description="Luma std-dev at or below which a (not black) picture is covered."
    )
    covered_ratio: float = Field(
        0.3, gt=0, lt=1, description="Covered/low contrast: luma std-dev below this fraction of the baseline."
    )
    cast_max_chroma: float = Field(
        30.0, ge=0, le=180, description="Colour cast: chroma offset (Lab a/b distance from grey) above this."
    )
    cast_max_shift: float = Field(
        25.0,
        ge=0,
        le=180,
        description="Colour cast: chroma offset moved this far from the camera's baseline.",
    )


class HealthSettings(Section):
    """Feed health: when a stream is online, degraded or offline, and how it is sampled."""

    enabled: bool = Field(True, description="Run the health monitor (state, diagnosis, probing).")
    offline_after_seconds: float = Field(
        3.0, ge=0.5, le=600, description="An always_on stream with no packet for this long is offline."
    )
    tick_seconds: float = Field(
        0.5, ge=0.05, le=10, description="How often stream stats are read and states re-evaluated."
    )
    min_fps: float = Field(
        1.0, ge=0, le=120, description="Below this many frames per second a stream is low_fps."
    )
    low_fps_ratio: float = Field(
        0.5,
        ge=0,
        le=1,
        description="low_fps also when fps falls below this fraction of the stream's usual fps.",
    )
    diagnosis_interval_seconds: float = Field(
        10.0, ge=0.5, le=3600, description="One keyframe per feed is diagnosed this often."
    )
    diagnosis: DiagnosisSettings = Field(default_factory=DiagnosisSettings, description="Picture checks.")
    probe_interval_seconds: float = Field(
        300.0, ge=5, le=86400, description="How often each on_demand camera is probed."
    )
    probe_jitter: float = Field(
        0.2, ge=0, le=1, description="Probe times are spread by +/- this fraction of the interval."
    )
    probe_concurrency: int = Field(
        128, ge=1, le=4096, description="Probes running at once (each mostly waits on the network)."
    )
    probe_timeout_seconds: float = Field(
        10.0,
        ge=1,
        le=120,
        description="A probe that gets no keyframe within this time marks the camera offline.",
    )
    offline_hold_seconds: float = Field(
        0.0, ge=0, le=3600, description="A stream must look offline this long before it is offline."
    )
    degraded_hold_seconds: float = Field(
        5.0, ge=0, le=3600, description="A stream must look degraded this long before it is degraded."
    )
    recover_hold_seconds: float = Field(
        5.0, ge=0, le=3600, description="A stream must look healthy this long before it is online again."
    )
    flapping_transitions: int = Field(
        6, ge=2, le=1000, description="This many state changes within the window make a camera flapping."
    )
    flapping_window_seconds: float = Field(
        600.0, ge=10, le=86400, description="Window over which state changes are counted for flapping."
    )
    history_retention_days: float = Field(
        8.0, ge=1, le=366, description="State transitions are kept this long (availability over 7 d needs 7)."
    )
