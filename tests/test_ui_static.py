"""The web UI's files on their own: offline, consistent, and never parsing server text as HTML."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

STATIC = Path(__file__).resolve().parent.parent / "framework" / "modelhubapi" / "static"


class _PageParser(HTMLParser):
    """Collects the ids and the resource URLs (src, href) of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name == "id" and value:
                self.ids.append(value)
            if name in {"src", "href"} and value:
                self.urls.append(value)


def parse_page() -> _PageParser:
    parser = _PageParser()
    parser.feed((STATIC / "index.html").read_text(encoding="utf-8"))
    return parser


def test_page_needs_nothing_from_another_site():
    page = parse_page()
    for url in page.urls:
        # Relative to the page (works offline and behind a path prefix), an in-page anchor,
        # or an empty data URL; never a CDN, never an absolute path.
        assert not re.match(r"^(?:[a-z][a-z0-9+.-]*:|//|/)", url) or url == "data:,", url
    for url in page.urls:
        if url.startswith("static/"):
            assert (STATIC / url.removeprefix("static/")).is_file(), url


def test_stylesheet_loads_nothing_from_elsewhere():
    css = (STATIC / "style.css").read_text(encoding="utf-8")
    assert "@import" not in css
    assert "url(" not in css


def test_every_id_the_script_uses_is_on_the_page():
    script = (STATIC / "app.js").read_text(encoding="utf-8")
    wanted = set(re.findall(r"\$\('([\w-]+)'\)", script))
    assert wanted, "the script looks elements up with $('id')"
    page_ids = parse_page().ids
    assert len(page_ids) == len(set(page_ids)), "ids are unique"
    assert wanted <= set(page_ids)


def test_script_never_turns_text_into_html():
    script = (STATIC / "app.js").read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script
