"""The UI is served by the app: pages as HTML, modules as JavaScript, nothing outside web/."""

from __future__ import annotations

from tests.apiclient import Api


async def test_pages_and_modules_are_served(api: Api) -> None:
    for path, marker in (
        ("/", "/web/console.js"),
        ("/login", "/web/login.js"),
        ("/display/main", "/web/display.js"),
        ("/registry", "/web/registry.js"),
    ):
        response = await api.client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("text/html")
        assert marker in response.text
    module = await api.client.get("/web/common/whep.js")
    assert module.status_code == 200
    assert module.headers["content-type"].startswith("text/javascript")
    assert "export function playWhep" in module.text
    assert (await api.client.get("/web/common/style.css")).headers["content-type"].startswith("text/css")


async def test_nothing_outside_the_web_directory(api: Api) -> None:
    for path in ("/web/%2e%2e/pyproject.toml", "/web/..%2fpyproject.toml", "/web/common/", "/web/nope.js"):
        response = await api.client.get(path)
        assert response.status_code == 404, path
        assert "[project]" not in response.text
