"""The HTTP API: one router per concept, wired together in ``videohub.app``."""
