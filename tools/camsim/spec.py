"""Mount specifications: the `name:key=val,...` grammar and the built-in presets.

Pure Python (no GStreamer), so the grammar can be checked without a running server.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

CODECS = ("h264", "h265", "mjpeg")
PROFILES = ("baseline", "main", "high")
PATTERNS = ("clock", "black", "frozen", "blur", "covered", "cast", "smpte", "noise")
AUDIO = ("none", "pcma")
AUTH = ("none", "basic", "digest")

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=&-]{0,63}$")


class SpecError(ValueError):
    """A mount spec that does not parse or names an unknown/invalid value."""


@dataclass(frozen=True)
class MountSpec:
    """What one simulated camera stream looks like (one RTSP mount)."""

    name: str
    codec: str = "h264"
    profile: str = "main"
    width: int = 640
    height: int = 360
    fps: int = 15
    gop: float = 2.0
    bitrate: int = 0  # kbit/s; 0 = chosen from the picture size
    pattern: str = "clock"
    audio: str = "none"
    bframes: int = 0
    inband_params: bool = True
    auth: str = "none"
    title: str = ""  # extra overlay text beside the name (demo camera captions)

    @property
    def key_int_max(self) -> int:
        """GOP length in frames, as the encoder wants it."""
        return max(1, round(self.gop * self.fps))

    @property
    def effective_bitrate(self) -> int:
        if self.bitrate > 0:
            return self.bitrate
        pixels = self.width * self.height
        return 400 if pixels <= 640 * 360 else 1200 if pixels <= 1280 * 720 else 3000

    def describe(self) -> dict[str, Any]:
        """JSON-friendly view (used in the ready line and GET /mounts)."""
        d = asdict(self)
        d["bitrate"] = self.effective_bitrate
        return d


def _parse_bool(value: str) -> bool:
    v = value.lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise SpecError(f"not a boolean: {value!r}")


def parse_spec(text: str) -> MountSpec:
    """Parse `name:key=val,key=val` (the part after ':' may be empty)."""
    name, _, rest = text.strip().partition(":")
    if not _NAME_RE.match(name):
        raise SpecError(f"bad mount name {name!r} (letters, digits, _ . - = &; max 64)")
    known = {f.name: f for f in fields(MountSpec)}
    values: dict[str, Any] = {"name": name}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip()
        value = value.strip()
        if not eq or key not in known or key == "name":
            raise SpecError(f"unknown or malformed key in {item!r}")
        try:
            if key in ("width", "height", "fps", "bitrate", "bframes"):
                values[key] = int(value)
            elif key == "gop":
                values[key] = float(value)
            elif key == "inband_params":
                values[key] = _parse_bool(value)
            else:
                values[key] = value
        except ValueError as exc:
            raise SpecError(f"bad value for {key}: {value!r}") from exc
    spec = MountSpec(**values)
    validate(spec)
    return spec


def validate(spec: MountSpec) -> None:
    """Reject combinations the encoders cannot produce, with the reason."""
    choices = {
        "codec": CODECS,
        "profile": PROFILES,
        "pattern": PATTERNS,
        "audio": AUDIO,
        "auth": AUTH,
    }
    for key, allowed in choices.items():
        if getattr(spec, key) not in allowed:
            raise SpecError(f"{key} must be one of {', '.join(allowed)}")
    if not (16 <= spec.width <= 3840 and 16 <= spec.height <= 2160):
        raise SpecError("width/height out of range (16..3840 x 16..2160)")
    if spec.width % 2 or spec.height % 2:
        raise SpecError("width and height must be even (I420)")
    if not 1 <= spec.fps <= 60:
        raise SpecError("fps must be 1..60")
    if not 0.1 <= spec.gop <= 60:
        raise SpecError("gop must be 0.1..60 seconds")
    if not 0 <= spec.bitrate <= 50000:
        raise SpecError("bitrate must be 0..50000 kbit/s")
    if not 0 <= spec.bframes <= 4:
        raise SpecError("bframes must be 0..4")
    if spec.bframes and (spec.codec != "h264" or spec.profile == "baseline"):
        raise SpecError("bframes need codec=h264 and profile main or high (baseline has no B-frames)")
    if spec.codec == "h265" and spec.profile != "main":
        raise SpecError("h265 supports profile=main only")
    if spec.codec == "mjpeg" and (spec.width > 2040 or spec.height > 2040):
        raise SpecError("mjpeg over RTP is limited to 2040x2040")
    if not spec.inband_params and spec.codec != "h264":
        raise SpecError("inband_params=false is implemented for h264 only")
    if "," in spec.title or ":" in spec.title:
        raise SpecError("title must not contain ',' or ':'")


def _test_preset() -> list[MountSpec]:
    # 360p, 10 fps, 1 s GOP: cheap enough to run all of them on a shared 2-core box.
    base = MountSpec(name="cb", profile="baseline", fps=10, gop=1.0)
    return [
        base,
        replace(base, name="main", profile="main"),
        replace(base, name="high", profile="high"),
        replace(base, name="h265", codec="h265", profile="main"),
        replace(base, name="bframes", profile="main", bframes=2),
        replace(base, name="mjpeg", codec="mjpeg"),
        replace(base, name="nosps", inband_params=False),
        replace(base, name="black", pattern="black"),
        replace(base, name="frozen", pattern="frozen"),
        replace(base, name="blur", pattern="blur"),
        replace(base, name="covered", pattern="covered"),
        replace(base, name="cast", pattern="cast"),
        replace(base, name="smpte", pattern="smpte"),
        replace(base, name="audio", audio="pcma"),
        replace(base, name="basic", auth="basic"),
        replace(base, name="digest", auth="digest"),
    ]


# Four departments of the command center; mount names are line-prefixed so the demo config can
# map them to lines: ga = 公安 public security, aj = 安监 work safety, hb = 环保 environment,
# gt = 国土 land resources. Captions are ASCII because the overlay font may lack CJK glyphs.
_DEMO_LINES = (
    ("ga", "Public Security"),
    ("aj", "Work Safety"),
    ("hb", "Environment"),
    ("gt", "Land Resources"),
)


def _demo_preset() -> list[MountSpec]:
    # 16 cameras. Encoders run only while a mount is watched; with all 16 watched the simulator
    # needs about 70 % of one core (x264 ~4 % per 360p/10 fps mount, ~15 % for the 720p one).
    mounts = [
        MountSpec(name=f"{prefix}-{i:02d}", profile="main", fps=10, gop=2.0, title=f"{caption} {i}")
        for prefix, caption in _DEMO_LINES
        for i in range(1, 4)
    ]
    # One HD main stream, one H.265 camera (browsers need it transcoded) and two faulty cameras
    # for the health view.
    mounts += [
        MountSpec(name="ga-hd", profile="high", width=1280, height=720, fps=12, gop=2.0, title="Square HD"),
        MountSpec(name="hb-h265", codec="h265", fps=10, gop=2.0, title="Outfall H265"),
        MountSpec(name="aj-dark", fps=10, pattern="black", title="Warehouse"),
        MountSpec(name="gt-fog", fps=10, pattern="blur", title="Hillside"),
    ]
    return mounts


def _no_mounts() -> list[MountSpec]:
    return []


PRESETS = {"test": _test_preset, "demo": _demo_preset, "none": _no_mounts}


def preset(name: str) -> list[MountSpec]:
    if name not in PRESETS:
        raise SpecError(f"unknown preset {name!r} (choose {', '.join(PRESETS)})")
    return PRESETS[name]()
