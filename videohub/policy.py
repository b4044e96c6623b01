"""Who may do what: the role × line rules in one place, as pure functions.

admin        everything
operator     sees every camera and wall; drives walls; cannot change the registry
line_admin   sees and changes only its own line's cameras
maintenance  sees every camera's metadata and health; acts on alerts; cannot change the registry
"""

from __future__ import annotations

from pydantic import BaseModel

from videohub.errors import Forbidden, InvalidField, NotFound
from videohub.models import User

WALL_WRITERS = ("admin", "operator")
"""Roles that drive the video wall: layouts, tiles, tours, presets (the console shows it read-only else)."""
ALERT_ACTORS = ("admin", "maintenance")
"""Roles that acknowledge and resolve alerts and re-send parked events."""


class Rights(BaseModel):
    """What the caller's role may do, for a UI to show or hide its controls (the API checks anyway)."""

    drive_wall: bool
    act_on_alerts: bool


def rights_of(user: User) -> Rights:
    return Rights(drive_wall=user.role in WALL_WRITERS, act_on_alerts=user.role in ALERT_ACTORS)


def visible_lines(user: User) -> frozenset[str] | None:
    """The lines whose cameras ``user`` sees; None means all of them."""
    if user.role == "line_admin":
        return frozenset({user.line}) if user.line else frozenset()
    return None


def can_see_line(user: User, line: str) -> bool:
    lines = visible_lines(user)
    return lines is None or line in lines


def check_camera_visible(user: User, camera_id: str, line: str) -> None:
    # Another line's camera is "not found" to a line admin: its existence is not theirs to learn.
    if not can_see_line(user, line):
        raise NotFound(f"camera {camera_id!r} not found")


def check_registry_write(user: User, line: str) -> None:
    if user.role == "admin":
        return
    if user.role == "line_admin":
        if user.line == line:
            return
        raise Forbidden(f"a line admin of {user.line!r} cannot change cameras of line {line!r}")
    raise Forbidden(f"role {user.role} cannot change the camera registry")


def check_camera_id(user: User, camera_id: str | None, prefix: str) -> None:
    """A line admin's camera ids carry its line's prefix, so they can never clash with (and reveal)
    another line's camera. Admins may choose any id."""
    if user.role == "line_admin" and camera_id is not None and not camera_id.startswith(prefix + "-"):
        raise InvalidField(("body", "id"), f"camera ids of this line start with '{prefix}-'")


def check_role(user: User, *roles: str) -> None:
    if user.role not in roles:
        raise Forbidden(f"role {user.role} may not do this (needs one of: {', '.join(roles)})")
