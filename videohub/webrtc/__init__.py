"""WHEP playback: encoded H.264 from a Feed subscription to aiortc peers, without decode or re-encode.

manager.SessionManager   owns live sessions, ends them, reports each to the audit hook
session.WhepSession      one player: RTCPeerConnection + FeedTrack + Feed subscription
track.FeedTrack          access units and their RTP timestamps from a Feed subscription
sender.PassthroughSender the per-viewer RTP loop: shared payloads, header, SRTP, sendto; NACK history
packetizer.Packetizer    H.264 RTP payloads made once per access unit, shared by every viewer
h264                     profile from the SPS, codec preferences, aiortc codec table entries
offer                    offer checks, mDNS candidate removal, trickle fragments
"""

from videohub.errors import IceRestartUnsupported, InvalidOffer
from videohub.webrtc.manager import SessionEndHook, SessionManager
from videohub.webrtc.session import SessionInfo, SessionRecord, WhepSession

__all__ = [
    "IceRestartUnsupported",
    "InvalidOffer",
    "SessionEndHook",
    "SessionInfo",
    "SessionManager",
    "SessionRecord",
    "WhepSession",
]
