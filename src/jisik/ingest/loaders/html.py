"""HTML (``.html``, ``.htm``): the main text, headings as sections, page furniture removed.

Parsing uses BeautifulSoup with lxml (fast and forgiving with broken markup). What is dropped:
scripts, styles, forms, navigation, site header/footer, sidebars, hidden elements and elements
whose class or id names them as boilerplate (cookie banners, breadcrumbs, share buttons).
When the page marks its content (``<main>``, ``role="main"``, or a single ``<article>``), only
that is kept.
"""

from __future__ import annotations

import re
from typing import Any

from jisik._lazy import require
from jisik.config import LoaderConfig
from jisik.ingest.loaders.base import Loaded, Source, TextBuilder, single
from jisik.ingest.loaders.encoding import decode_html
from jisik.records import MetadataValue

_DROP_ALWAYS = [
    "script", "style", "noscript", "template", "nav", "aside", "form", "button", "select",
    "input", "textarea", "iframe", "svg", "canvas", "object", "embed", "dialog", "head",
]  # fmt: skip
_DROP_ROLES = {"navigation", "banner", "contentinfo", "complementary", "search", "dialog"}
# Whole class/id tokens only: a regex on parts would also drop "share-price" or "menu-table".
_BOILERPLATE = {
    "ad", "ads", "advert", "banner", "breadcrumb", "breadcrumbs", "comments", "cookie", "cookie-banner",
    "cookie-consent", "cookies", "main-menu", "menu", "modal", "nav", "navbar", "newsletter", "popup",
    "related", "related-posts", "share", "share-buttons", "sidebar", "site-menu", "skip-link", "social",
    "social-share", "toc",
}  # fmt: skip
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_BLOCKS = {
    "address", "article", "blockquote", "caption", "dd", "details", "div", "dl", "dt", "fieldset",
    "figcaption", "figure", "hr", "li", "main", "ol", "p", "section", "summary", "table", "tbody",
    "thead", "tfoot", "ul",
}  # fmt: skip
# Blocks that end a paragraph: a blank line after them, so chunkers can split on paragraphs.
# Items, rows and terms (li, tr, dt, dd) end only a line: they belong with their neighbours.
_PARAGRAPHS = {
    "p",
    "div",
    "section",
    "article",
    "main",
    "table",
    "ul",
    "ol",
    "dl",
    "blockquote",
    "pre",
    "figure",
}
_SPACE = re.compile(r"\s+")


def _remove_boilerplate(soup: Any) -> None:
    for tag in soup.find_all(_DROP_ALWAYS):
        tag.decompose()
    # A <header>/<footer> inside an article is the article's own (its title, its date): keep it.
    for tag in soup.find_all(["header", "footer"]):
        if not tag.decomposed and tag.find_parent(["article", "main"]) is None:
            tag.decompose()
    for tag in soup.find_all(True):
        if tag.decomposed or tag.attrs is None:
            continue
        if _is_hidden_or_boilerplate(tag):
            tag.decompose()


def _is_hidden_or_boilerplate(tag: Any) -> bool:
    if tag.name in ("html", "body", "main", "article"):
        return False
    if str(tag.get("role", "")).lower() in _DROP_ROLES or tag.has_attr("hidden"):
        return True
    if str(tag.get("aria-hidden", "")).lower() == "true":
        return True
    if re.search(r"display\s*:\s*none", str(tag.get("style", "")), re.IGNORECASE):
        return True
    classes = tag.get("class") or []
    tokens = [*classes] if isinstance(classes, list) else str(classes).split()
    tokens.append(str(tag.get("id", "")))
    return any(token.lower() in _BOILERPLATE for token in tokens)


def _content_root(soup: Any) -> Any:
    main = soup.find("main") or soup.find(attrs={"role": "main"})
    if main is None:
        articles = soup.find_all("article")
        main = articles[0] if len(articles) == 1 else None
    if main is not None and main.get_text(strip=True):
        return main
    return soup.body or soup


class _Walker:
    """Walks the tree in document order, building lines; headings start new sections."""

    def __init__(self, navigable_string: type, preformatted: type) -> None:
        self.builder = TextBuilder()
        self.stack: list[tuple[int, str]] = []
        self.lines: list[str] = []
        self.inline: list[str] = []
        self._text_type = navigable_string
        self._skip_type = preformatted  # comments, doctype, CDATA: not visible text

    @property
    def section(self) -> str | None:
        return " > ".join(t for _, t in self.stack if t) or None

    def end_line(self) -> None:
        line = _SPACE.sub(" ", "".join(self.inline)).strip()
        if line:
            self.lines.append(line)
        self.inline = []

    def flush(self) -> None:
        self.end_line()
        self.builder.add("\n".join(self.lines), section=self.section)
        self.lines = []

    def heading(self, level: int, text: str) -> None:
        self.flush()
        while self.stack and self.stack[-1][0] >= level:
            self.stack.pop()
        self.stack.append((level, text))
        if text:
            self.lines.extend([text, ""])

    def walk(self, node: Any) -> None:
        for child in node.children:
            if isinstance(child, self._skip_type):
                continue
            if isinstance(child, self._text_type):
                self.inline.append(str(child))
            elif child.name in _HEADINGS:
                self.heading(_HEADINGS[child.name], _SPACE.sub(" ", child.get_text(" ")).strip())
            elif child.name == "br":
                self.end_line()
            elif child.name == "tr":
                self.end_line()
                self.inline.append(_row_text(child))
                self.end_line()
            elif child.name == "pre":
                self.end_line()
                self.lines.append(child.get_text().strip("\n"))
                self.lines.append("")
            elif child.name in _BLOCKS:
                self.end_line()
                if child.name == "li":
                    self.inline.append("- ")
                self.walk(child)
                self.end_line()
                if child.name in _PARAGRAPHS:
                    self.lines.append("")  # clean_text folds repeated blank lines into one
            else:
                self.walk(child)


def _row_text(tr: Any) -> str:
    """Cells of one table row on one line, `` | `` between them, so a number keeps its row label."""
    cells = [_SPACE.sub(" ", c.get_text(" ")).strip() for c in tr.find_all(["td", "th"], recursive=False)]
    return " | ".join(c for c in cells if c)


def _title(soup: Any) -> str | None:
    if soup.title is not None:
        title = _SPACE.sub(" ", soup.title.get_text(" ")).strip()
        if title:
            return title
    h1 = soup.find("h1")
    return _SPACE.sub(" ", h1.get_text(" ")).strip() if h1 is not None else None


def _page_metadata(soup: Any) -> dict[str, MetadataValue]:
    meta: dict[str, MetadataValue] = {}
    html_tag = soup.find("html")
    if html_tag is not None and html_tag.get("lang"):
        meta["lang"] = str(html_tag["lang"])
    description = soup.find("meta", attrs={"name": re.compile("^description$", re.IGNORECASE)})
    if description is not None and description.get("content"):
        meta["description"] = str(description["content"]).strip()
    return meta


def load_html(src: Source, config: LoaderConfig) -> Loaded:
    bs4 = require("bs4", package="beautifulsoup4")
    require("lxml")  # the parser; fail with the install command rather than a bs4 FeatureNotFound
    decoded = decode_html(src.data, encoding=config.encoding, path=src.rel)
    soup = bs4.BeautifulSoup(decoded.text, "lxml")
    title = _title(soup)  # before cleaning: <title> lives in <head>, which is dropped
    metadata = {**_page_metadata(soup), "encoding": decoded.encoding}
    _remove_boilerplate(soup)
    walker = _Walker(bs4.NavigableString, bs4.element.PreformattedString)
    walker.walk(_content_root(soup))
    walker.flush()
    return single(src, walker.builder, title=title, metadata=metadata)
