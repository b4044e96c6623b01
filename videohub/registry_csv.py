"""CSV import for the registry: one row a camera, each row succeeding or failing on its own.

Limits come first: the rows are counted, and an import that would pass a line's camera quota or the
node's always_on quota is refused as a whole before any row is created.

Columns (header names; only name, line and main_url are required):
    id, name, line, area, lat, lon, address, main_url, main_transport, sub_url, sub_transport,
    username, password, mode, enabled, tags (separated by ';'), vendor, model
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from typing import Any

from pydantic import ValidationError

from videohub.audit import AuditLog
from videohub.errors import Forbidden, InvalidField, VideohubError
from videohub.models import CameraCreate, ImportResult, ImportRow, User
from videohub.policy import check_camera_id, check_registry_write
from videohub.registry import CameraRegistry

COLUMNS = (
    "id name line area lat lon address main_url main_transport sub_url sub_transport "
    "username password mode enabled tags vendor model"
).split()
MAX_ROWS = 20_000
_TRUE = {"1", "true", "yes", "y", "是", "启用"}
_FALSE = {"0", "false", "no", "n", "否", "停用"}


def row_to_body(row: dict[str, str]) -> dict[str, Any]:
    """Turn one CSV row into a CameraCreate body (validation happens in pydantic)."""
    get = {k: (v or "").strip() for k, v in row.items() if k}
    body: dict[str, Any] = {"name": get.get("name", ""), "line": get.get("line", "")}
    for field in ("id", "area", "vendor", "model", "mode"):
        if get.get(field):
            body[field] = get[field]
    streams: dict[str, Any] = {"main": {"url": get.get("main_url", "")}}
    if get.get("main_transport"):
        streams["main"]["transport"] = get["main_transport"]
    if get.get("sub_url"):
        streams["sub"] = {"url": get["sub_url"]}
        if get.get("sub_transport"):
            streams["sub"]["transport"] = get["sub_transport"]
    body["streams"] = streams
    if get.get("lat") or get.get("lon"):
        body["location"] = {"lat": get.get("lat") or None, "lon": get.get("lon") or None}
        if get.get("address"):
            body["location"]["address"] = get["address"]
    if get.get("username"):
        body["credentials"] = {"username": get["username"], "password": get.get("password", "")}
    if get.get("enabled"):
        value = get["enabled"].lower()
        body["enabled"] = True if value in _TRUE else False if value in _FALSE else value
    if get.get("tags"):
        body["tags"] = [t.strip() for t in get["tags"].split(";") if t.strip()]
    return body


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    return f"{loc}: {err['msg'].removeprefix('Value error, ')}"


async def _check_quota(records: list[dict[str, str]], user: User, registry: CameraRegistry) -> None:
    """Refuse the whole import (409) when the rows the user may create would pass a quota."""
    per_line: Counter[str] = Counter()
    always_on = 0
    for record in records:
        line = (record.get("line") or "").strip()
        try:
            check_registry_write(user, line)
        except Forbidden:
            continue  # refused row by row (403) anyway
        per_line[line] += 1
        mode = (record.get("mode") or "").strip() or "always_on"
        enabled = (record.get("enabled") or "").strip().lower() not in _FALSE
        always_on += registry.always_on_cost(mode, enabled, bool((record.get("sub_url") or "").strip()))
    await registry.check_quota(per_line, always_on)


async def import_csv(text: str, user: User, registry: CameraRegistry, audit: AuditLog) -> ImportResult:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in ("name", "line", "main_url") if c not in header]
    unknown = [h for h in header if h and h not in COLUMNS]
    if missing or unknown:
        problems = []
        if missing:
            problems.append(f"missing column(s): {', '.join(missing)}")
        if unknown:
            problems.append(f"unknown column(s): {', '.join(unknown)}")
        raise InvalidField(("body", "header"), "; ".join(problems) + f". Known columns: {', '.join(COLUMNS)}")
    reader.fieldnames = header
    records: list[dict[str, str]] = []
    for record in reader:
        if len(records) == MAX_ROWS:
            raise InvalidField(("body",), f"the CSV has more than {MAX_ROWS} rows; split it")
        records.append(record)
    await _check_quota(records, user, registry)
    rows: list[ImportRow] = []
    for number, row in enumerate(records, start=1):
        if None in row:
            rows.append(ImportRow(row=number, ok=False, status=422, error="more cells than header columns"))
            continue
        try:
            body = CameraCreate.model_validate(row_to_body(row))
            check_registry_write(user, body.line)
            check_camera_id(user, body.id, registry.prefix(body.line))
            camera = await registry.create(body)
        except ValidationError as exc:
            rows.append(ImportRow(row=number, ok=False, status=422, error=_first_error(exc)))
            continue
        except VideohubError as exc:
            rows.append(ImportRow(row=number, ok=False, status=exc.status, error=exc.message))
            continue
        await audit.record(user.username, "camera.import", camera.id, None, camera.model_dump(mode="json"))
        rows.append(ImportRow(row=number, ok=True, id=camera.id, status=201))
    created = sum(1 for r in rows if r.ok)
    return ImportResult(created=created, failed=len(rows) - created, rows=rows)
