"""Service settings for benchmarks that play many viewers as one user.

A benchmark's viewers all log in as the admin and are added faster than they connect, which the
playback limits (``webrtc.max_sessions_per_user``, ``max_pending_per_user``, ``max_pending``) are
there to refuse: benchmarks lift them, as they measure the media path, not the limits.
"""

MANY_VIEWERS_ENV = {
    "VIDEOHUB_WEBRTC__MAX_SESSIONS": "1000",
    "VIDEOHUB_WEBRTC__MAX_SESSIONS_PER_USER": "1000",
    "VIDEOHUB_WEBRTC__MAX_PENDING_PER_USER": "1000",
    "VIDEOHUB_WEBRTC__MAX_PENDING": "1000",
}
