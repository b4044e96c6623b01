"""The words alert messages use, (zh-CN, en): the health page's own (web/health/strings.js), in one place.

``tests/alerts/test_channel_messages.py`` checks that the reasons, kinds and states here read as
they do on the health page, so a message and the page never name one thing two ways.
"""

from __future__ import annotations

REASONS: dict[str, tuple[str, str]] = {
    "auth_failed": ("认证失败", "Authentication failed"),
    "not_found": ("地址不存在", "Not found"),
    "refused": ("连接被拒绝", "Connection refused"),
    "unreachable": ("网络不可达", "Unreachable"),
    "timeout": ("连接超时", "Timeout"),
    "no_video": ("无视频", "No video"),
    "stalled": ("码流中断", "Stream stalled"),
    "no_packets": ("无数据", "No data"),
    "unsupported_codec": ("编码不支持", "Unsupported codec"),
    "eof": ("码流结束", "End of stream"),
    "error": ("错误", "Error"),
    "low_fps": ("帧率过低", "Low frame rate"),
    "black": ("黑屏", "Black picture"),
    "dark": ("画面过暗", "Too dark"),
    "overexposed": ("过曝", "Overexposed"),
    "frozen": ("画面冻结", "Frozen picture"),
    "blurred": ("画面模糊", "Blurred"),
    "covered": ("遮挡/低对比度", "Covered / low contrast"),
    "color_cast": ("偏色", "Colour cast"),
    "flapping": ("频繁掉线", "Flapping"),
}
"""Health reasons (``reason.*`` on the health page)."""

KINDS: dict[str, tuple[str, str]] = {
    "offline": ("离线", "Offline"),
    "degraded": ("画面/码流异常", "Degraded"),
    "flapping": ("频繁掉线", "Flapping"),
}
"""Alert kinds (``health.alert.kind.*``)."""

EVENTS: dict[str, tuple[str, str]] = {
    "opened": ("告警", "Alert"),
    "updated": ("告警更新", "Alert updated"),  # health.parked.event.updated
    "acknowledged": ("已确认", "Acknowledged"),  # health.alert.state.acknowledged
    "resolved": ("已恢复", "Resolved"),  # health.alert.state.resolved
}
"""The headline word of each event."""

LABELS: dict[str, tuple[str, str]] = {
    "camera": ("设备", "Camera"),
    "line": ("业务线", "Line"),
    "area": ("区域", "Area"),
    "reasons": ("原因", "Reasons"),
    "opened": ("发生时间", "Opened"),
    "acknowledged": ("确认", "Acknowledged"),
    "resolved": ("恢复", "Resolved"),
    "by_itself": ("自动恢复", "recovered by itself"),
    "by": ("由 {who} 解除", "by {who}"),
    "note": ("备注", "Note"),
    "link": ("打开运维监测", "Open the health page"),
    "page": ("运维监测", "Health page"),
    "zone": ("北京时间", "China time, UTC+8"),
    "subject": ("【视频监控】", "[videohub] "),
    "unknown_camera": ("（已删除的设备）", "(deleted camera)"),
}
"""Field names and phrases of the messages."""


def reason(code: str, lang: int) -> str:
    """A health reason in the language (0: zh-CN, 1: en); an unknown code as it is."""
    return REASONS[code][lang] if code in REASONS else code


def kind(code: str, lang: int) -> str:
    return KINDS[code][lang] if code in KINDS else code
