"""Print the commented YAML for settings sections, from the pydantic models' descriptions.

    .venv/bin/python tools/gen_config.py ingest webrtc health alerts

Used to write config/videohub.yaml; tests/test_settings.py checks that the file names every key.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from pydantic import BaseModel

from videohub.settings import Settings


def _scalar(value: Any) -> str:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def emit(model: type[BaseModel], instance: BaseModel, indent: int, out: list[str]) -> None:
    pad = "  " * indent
    for name, field in model.model_fields.items():
        value = getattr(instance, name)
        desc = (field.description or "").replace("\n", " ")
        if isinstance(value, BaseModel):
            out.append(f"{pad}# {desc}" if desc else f"{pad}#")
            out.append(f"{pad}{name}:")
            emit(type(value), value, indent + 1, out)
        else:
            if desc:
                out.append(f"{pad}# {desc}")
            out.append(f"{pad}{name}: {_scalar(value)}")


def main(sections: list[str]) -> int:
    defaults = Settings(lines=[{"id": "xx", "name_zh": "x", "name_en": "x", "color": "#000000"}])
    out: list[str] = []
    for section in sections:
        value = getattr(defaults, section)
        out.append("")
        out.append(f"# {Settings.model_fields[section].description}")
        out.append(f"{section}:")
        emit(type(value), value, 1, out)
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
