"""Settings: the shipped file is valid and documents every key; environment overrides; errors name keys."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from videohub.resources import default_config_path, web_dir
from videohub.settings import ConfigError, Settings, load_settings


def paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out.extend(paths(annotation, f"{prefix}{name}."))
        else:
            out.append(prefix + name)
    return out


def test_shipped_config_names_and_comments_every_key() -> None:
    text = default_config_path().read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    missing = []
    for path in paths(Settings):
        node = data
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                missing.append(path)
                break
            node = node[part]
    # admin_password is a secret: it comes from the environment only, never from the shipped file.
    assert missing == ["admin_password"]
    lines = text.splitlines()
    documented: set[str] = set()  # keys of list entries are documented on the first entry
    for index, line in enumerate(lines):
        stripped = line.strip().removeprefix("- ")
        if not stripped or stripped.startswith("#") or ":" not in stripped or index == 0:
            continue
        name = stripped.split(":", 1)[0]
        if "#" in line or lines[index - 1].strip().startswith("#"):
            documented.add(name)
        assert name in documented, f"config line {index + 1} has no comment: {line!r}"


def test_environment_overrides_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDEOHUB_SERVER__PORT", "9123")
    monkeypatch.setenv("VIDEOHUB_REDIS_URL", "redis://127.0.0.1:6390/2")
    monkeypatch.setenv("VIDEOHUB_INGEST__STALL_TIMEOUT", "4.5")
    settings = load_settings()
    assert settings.server.port == 9123 and settings.redis_url == "redis://127.0.0.1:6390/2"
    assert settings.ingest.stall_timeout == 4.5
    assert [line.name_zh for line in settings.lines] == ["公安", "安监", "环保", "国土"]


def test_a_new_line_is_configuration_only(tmp_path: Path) -> None:
    data = yaml.safe_load(default_config_path().read_text(encoding="utf-8"))
    data["lines"].append(
        {"id": "urban", "name_zh": "城管", "name_en": "Urban Management", "color": "#0891b2"}
    )
    path = tmp_path / "with-urban.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    assert "urban" in load_settings(path).line_ids


def test_bad_values_are_errors_with_key_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("lines: []\nserver: {port: -1}\nhealth: {offline_after_secs: 3}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    keys = [key for key, _ in caught.value.problems]
    assert "lines" in keys and "server.port" in keys and "health.offline_after_secs" in keys
    monkeypatch.setenv("VIDEOHUB_REDIS_URL", "http://not-redis")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "redis_url" in str(caught.value)


def test_the_ui_is_found_beside_the_package() -> None:
    assert (web_dir() / "console.html").is_file()
