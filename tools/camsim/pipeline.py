"""GStreamer launch lines for one mount, and the live knobs that switch its picture.

Picture chain (every knob lives on an element that stays in the pipeline, so patterns switch live
without rebuilding the mount; at default values the knobs are passthrough and cost nothing):

    videotestsrc name=src                 pattern / colours / horizontal scroll (motion)
    ! valve name=idle                     closed while the mount has no client
    ! clockoverlay name=osd               mount name + wall clock, like a camera OSD
    ! videobalance name=balance           contrast/brightness/saturation (covered = low contrast)
    ! videoscale ! capsfilter name=blur   down to ~1/20 size when blurred ...
    ! videoscale ! capsfilter             ... and back up: a strong, cheap blur of everything
    ! encoder ! parser ! valve name=vvalve ! payloader pay0

The overlay sits before balance and blur so that a diagnosis of "covered" or "blur" is not fooled
by a sharp, high-contrast OSD.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from camsim.spec import MountSpec

_H264_PROFILE_CAPS = {"baseline": "constrained-baseline", "main": "main", "high": "high"}
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def launch_line(spec: MountSpec) -> str:
    """The gst-rtsp-server launch description for `spec` (payloaders named pay0, pay1)."""
    w, h, fps = spec.width, spec.height, spec.fps
    video = (
        f"videotestsrc name=src is-live=true pattern=smpte100 horizontal-speed=4 "
        f"! video/x-raw,format=I420,width={w},height={h},framerate={fps}/1 "
        # Closed while nobody watches (see Mount): no frame reaches the encoder, so an idle mount
        # costs next to no CPU although its pipeline keeps playing.
        f"! valve name=idle drop=false "
        # clockoverlay scales its font with the frame width (auto-resize), so one size fits all.
        f'! clockoverlay name=osd font-desc="Sans Bold 12" halignment=left valignment=top '
        f'shaded-background=true time-format="{_TIME_FORMAT}" '
        f"! videobalance name=balance "
        f"! videoscale ! capsfilter name=blur caps=video/x-raw,width={w},height={h} "
        f"! videoscale ! video/x-raw,width={w},height={h} "
        f"! {_encoder(spec)} "
        f"! valve name=vvalve drop=false "
    )
    if spec.codec == "h264":
        video += "! rtph264pay name=pay0 pt=96 config-interval=0"
    elif spec.codec == "h265":
        video += "! rtph265pay name=pay0 pt=96 config-interval=0"
    else:
        video += "! rtpjpegpay name=pay0 pt=26"
    if spec.audio == "pcma":
        video += (
            " audiotestsrc name=asrc is-live=true wave=sine freq=440 volume=0.05 "
            "! valve name=aidle drop=false ! audio/x-raw,rate=8000,channels=1 ! alawenc "
            "! valve name=avalve drop=false ! rtppcmapay name=pay1 pt=8"
        )
    return f"( {video} )"


def _encoder(spec: MountSpec) -> str:
    threads = 1 if spec.width * spec.height <= 640 * 360 else 2
    if spec.codec == "mjpeg":
        # Old cameras and encoders: every frame a keyframe, never passthrough to a browser.
        return "jpegenc name=enc quality=60"
    if spec.codec == "h265":
        # pools/frame-threads: keep x265 from spawning a thread per core on a shared box.
        return (
            f"x265enc name=enc speed-preset=ultrafast tune=zerolatency bitrate={spec.effective_bitrate} "
            f'key-int-max={spec.key_int_max} option-string="pools={threads}:frame-threads=1:bframes=0" '
            "! video/x-h265,profile=main ! h265parse config-interval=-1"
        )
    # zerolatency forces bframes=0 and sliced threads; a B-frame mount needs the plain tuning
    # (x264's ultrafast preset has no lookahead, so latency stays low anyway).
    tune = "tune=zerolatency " if spec.bframes == 0 else "b-adapt=false "
    # ultrafast turns CABAC and 8x8 transforms off, and x264 then signals Constrained Baseline
    # whatever the caps ask for: switch the features on that make the stream really Main/High.
    if spec.profile != "baseline":
        tune += "cabac=true "
    if spec.profile == "high":
        tune += "dct8x8=true "
    enc = (
        f"x264enc name=enc speed-preset=ultrafast {tune}threads={threads} bframes={spec.bframes} "
        f"bitrate={spec.effective_bitrate} key-int-max={spec.key_int_max} "
    )
    profile = _H264_PROFILE_CAPS[spec.profile]
    if spec.inband_params:
        # SPS/PPS before every IDR via the parser; doing it in rtph264pay splits sliced IDR frames.
        return f"{enc}! video/x-h264,profile={profile} ! h264parse config-interval=-1"
    # Like many real cameras: SPS/PPS only in the SDP (sprop-parameter-sets). x264 repeats them
    # before every IDR unless told not to; with avc output they then live in codec_data only, which
    # the payloader turns into sprop-parameter-sets, and the parser must not re-insert them.
    return (
        f"{enc}option-string=repeat-headers=0 ! video/x-h264,profile={profile},stream-format=avc "
        "! h264parse config-interval=0"
    )


_GREEN_FG = 0xFF40D040
_GREEN_BG = 0xFF103810
_MOVING = {"pattern": "smpte100", "horizontal-speed": 4}
_NEUTRAL = {"contrast": 1.0, "brightness": 0.0, "saturation": 1.0}


@dataclass(frozen=True)
class PictureSettings:
    """Property values for the pattern knobs; applied to a running pipeline by `apply_pattern`."""

    src: dict[str, Any] = field(default_factory=lambda: dict(_MOVING))
    osd_silent: bool = False  # no OSD at all
    osd_frozen: bool = False  # the OSD clock stops at the time of the switch
    balance: dict[str, float] = field(default_factory=lambda: dict(_NEUTRAL))
    blur: bool = False


def picture_settings(pattern: str) -> PictureSettings:
    """Knob values per pattern. Each pattern is chosen to be unambiguous for a picture diagnosis."""
    if pattern == "black":
        return PictureSettings(src={"pattern": "black", "horizontal-speed": 0}, osd_silent=True)
    if pattern == "frozen":
        # The scroll stops where it is and the OSD clock shows one fixed time: every frame identical.
        return PictureSettings(src={"pattern": "smpte100", "horizontal-speed": 0}, osd_frozen=True)
    if pattern == "blur":
        return PictureSettings(blur=True)
    if pattern == "covered":
        # Nearly uniform mid grey: a hand or a bag over the lens, still a little light and motion.
        return PictureSettings(balance={"contrast": 0.06, "brightness": 0.35, "saturation": 0.1})
    if pattern == "cast":
        src = {
            "pattern": "pinwheel",
            "horizontal-speed": 4,
            "foreground-color": _GREEN_FG,
            "background-color": _GREEN_BG,
        }
        return PictureSettings(src=src)
    if pattern == "smpte":
        return PictureSettings(src={"pattern": "smpte75", "horizontal-speed": 0})
    if pattern == "noise":
        # Sensor noise everywhere: the encoder spends its whole bitrate, as on a busy real scene
        # (the clock and bar patterns compress to a fraction of a camera's bitrate), at about a
        # third of the CPU the "cast" pinwheel costs to draw.
        return PictureSettings(src={"pattern": "snow", "horizontal-speed": 0})
    return PictureSettings()


def osd_text(spec: MountSpec) -> str:
    return f"{spec.name} {spec.title}".strip()


def apply_pattern(bin_: Any, spec: MountSpec, pattern: str) -> None:
    """Set the knobs of a running media pipeline (`bin_` is the media's element) to `pattern`.

    Must run on the GLib main loop thread (the one that owns the RTSP server).
    """
    from gi.repository import Gst

    s = picture_settings(pattern)
    src = bin_.get_by_name("src")
    for key, value in s.src.items():
        src.set_property(key, value)
    if "foreground-color" not in s.src:
        src.set_property("foreground-color", 0xFFFFFFFF)
        src.set_property("background-color", 0xFF000000)
    osd = bin_.get_by_name("osd")
    osd.set_property("silent", s.osd_silent)
    osd.set_property("text", osd_text(spec))
    # A format string without % directives makes clockoverlay print one unchanging time.
    osd.set_property("time-format", time.strftime(_TIME_FORMAT) if s.osd_frozen else _TIME_FORMAT)
    balance = bin_.get_by_name("balance")
    for key, fvalue in s.balance.items():
        balance.set_property(key, fvalue)
    blur = bin_.get_by_name("blur")
    if s.blur:
        w, h = max(8, spec.width // 20) & ~1, max(8, spec.height // 20) & ~1
    else:
        w, h = spec.width, spec.height
    blur.set_property("caps", Gst.Caps.from_string(f"video/x-raw,width={w},height={h}"))


def set_stalled(bin_: Any, stalled: bool) -> None:
    """Close/open the valves in front of the payloaders (sessions stay, packets stop)."""
    for name in ("vvalve", "avalve"):
        valve = bin_.get_by_name(name)
        if valve is not None:
            valve.set_property("drop", stalled)
    if not stalled:
        _force_keyframe(bin_)


def set_idle(bin_: Any, idle: bool) -> None:
    """Stop feeding the encoders (idle) or start again with a keyframe (a client starts playing).

    Audio pauses with the video: a client's stream analysis then sees both start together.
    """
    for name in ("idle", "aidle"):
        valve = bin_.get_by_name(name)
        if valve is not None:
            valve.set_property("drop", idle)
    if not idle:
        _force_keyframe(bin_)


def _force_keyframe(bin_: Any) -> None:
    # Readers that waited through a stall can decode again at once instead of after a full GOP.
    from gi.repository import Gst, GstVideo

    enc = bin_.get_by_name("enc")
    pad = enc.get_static_pad("src") if enc is not None else None
    if pad is not None:
        pad.send_event(GstVideo.video_event_new_upstream_force_key_unit(Gst.CLOCK_TIME_NONE, True, 0))
