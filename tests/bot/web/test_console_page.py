"""The agent console's static page: served with a strict Content-Security-Policy, no markup from data.

These checks need no running stack; the console's behaviour is tested in tests/browser/test_console_browser.py.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from bot.settings import Settings
from bot.web.app import create_app
from bot.web.routes.pages import STATIC


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    # The ASGI transport sends no lifespan events, so Redis, the engine and the CRM are not needed:
    # only the static routes answer.
    app = create_app(Settings(var_dir=tmp_path), engine_token="unused")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console.test") as c:
        yield c


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


async def test_console_is_served_without_a_token_under_a_strict_csp(client: httpx.AsyncClient) -> None:
    page = await client.get("/console")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = {d.split()[0]: d.split()[1:] for d in page.headers["content-security-policy"].split("; ")}
    assert csp["default-src"] == ["'none'"]
    assert csp["script-src"] == ["'self'"]
    assert csp["style-src"] == ["'self'"]
    assert csp["connect-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert page.headers["x-content-type-options"] == "nosniff"
    for asset, kind in (("/console.js", "text/javascript"), ("/console.css", "text/css")):
        resp = await client.get(asset)
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith(kind)


def test_console_page_has_no_inline_script_or_style() -> None:
    parser = _Tags()
    parser.feed((STATIC / "console.html").read_text())
    scripts = [attrs for tag, attrs in parser.tags if tag == "script"]
    assert scripts == [{"src": "/console.js", "defer": None}]
    assert not [tag for tag, _ in parser.tags if tag == "style"]
    inline = [(tag, name) for tag, attrs in parser.tags for name in attrs if name == "style" or name.startswith("on")]
    assert inline == []
    sheets = [attrs["href"] for tag, attrs in parser.tags if tag == "link" and attrs.get("rel") == "stylesheet"]
    assert sheets == ["/console.css"]


def test_console_script_never_parses_markup() -> None:
    source = (STATIC / "console.js").read_text()
    # Customer text goes in with textContent; none of these may appear, even once.
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in source, sink
    assert not re.search(r"""setAttribute\(\s*["']on""", source)
