"""``redact_wall_for``: the pure rule every way a wall leaves the service goes through."""

from __future__ import annotations

from videohub.models import User
from videohub.walls import Wall, WallSpec, redact_wall_for

LINES = {"ps-1": "public_security", "env-1": "environment"}


def _wall() -> Wall:
    spec = WallSpec.model_validate(
        {
            "layout": "4",
            "tiles": [{"camera_id": "env-1"}, {"camera_id": "ps-1", "stream": "main"}, {"camera_id": "gone"}],
            "tours": [{"tile": "wall", "cameras": ["env-1", "ps-1", "gone"], "started_at": 1.0}],
        }
    ).padded()
    return Wall(id="main", version=3, **spec.model_dump())


def test_a_line_admin_gets_other_lines_and_unknown_cameras_without_ids() -> None:
    user = User(username="env", role="line_admin", line="environment")
    view = redact_wall_for(user, _wall(), LINES.get).model_dump(mode="json")
    assert view["tiles"][:4] == [
        {"camera_id": "env-1", "stream": "sub"},
        {"camera_id": None, "stream": "main", "hidden": True, "reason": "forbidden"},
        {"camera_id": None, "stream": "sub", "hidden": True, "reason": "forbidden"},  # deleted: line unknown
        {"camera_id": None, "stream": "sub"},  # an empty tile stays empty
    ]
    (tour,) = view["tours"]
    assert tour["cameras"] == ["env-1", None, None] and tour["hidden"] is True and tour["started_at"] == 1.0
    assert view["version"] == 3 and "ps-1" not in str(view) and "gone" not in str(view)


def test_roles_that_see_every_line_get_the_wall_as_stored() -> None:
    wall = _wall()
    for role in ("admin", "operator", "maintenance"):
        view = redact_wall_for(User(username=role, role=role), wall, lambda camera_id: None)
        assert view.model_dump(mode="json") == wall.model_dump(mode="json")
