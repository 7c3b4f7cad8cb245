"""Read what a rendered report states: data-* attributes and the embedded chart specs."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.elements: list[dict[str, str]] = []
        self._in_specs = False
        self.specs_text = ""
        self.script_srcs: list[str] = []
        self.links: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        a["_tag"] = tag
        if any(k.startswith("data-") for k in a):
            self.elements.append(a)
        if tag == "script":
            self.scripts += 1
            if "src" in a:
                self.script_srcs.append(a["src"])
            self._in_specs = a.get("id") == "cartera-charts"
        if tag in ("link", "img", "iframe") and (a.get("href") or a.get("src")):
            self.links.append(a.get("href") or a.get("src"))

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_specs = False

    def handle_data(self, data):
        if self._in_specs:
            self.specs_text += data


class Page:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.text = self.path.read_text(encoding="utf-8")
        c = _Collector()
        c.feed(self.text)
        self.elements = c.elements
        self.specs = json.loads(c.specs_text) if c.specs_text else {}
        self.script_srcs, self.links, self.scripts = c.script_srcs, c.links, c.scripts

    def with_attr(self, name: str) -> list[dict[str, str]]:
        return [e for e in self.elements if name in e]

    def kpi(self, key: str) -> str:
        (el,) = [e for e in self.elements if e.get("data-kpi") == key]
        return el["data-value"]

    def rows(self, attr: str) -> dict[str, dict[str, str]]:
        return {e[attr]: e for e in self.elements if attr in e}
