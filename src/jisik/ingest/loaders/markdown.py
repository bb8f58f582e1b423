"""Markdown (``.md``, ``.markdown``): heading path as the section, front matter as metadata.

The body stays Markdown (lists, tables and code read well to people and models); only heading
lines lose their ``#`` marks, since the heading path already carries the structure.
"""

from __future__ import annotations

import re

from jisik.config import LoaderConfig
from jisik.ingest.loaders.base import Loaded, Source, TextBuilder, single
from jisik.ingest.loaders.encoding import decode_bytes
from jisik.records import MetadataValue

_ATX = re.compile(r"^ {0,3}(#{1,6})(?=[ \t]|$)[ \t]*(.*?)(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_FRONT_KEY = re.compile(r"^([A-Za-z_][\w.-]*)[ \t]*:(?:[ \t]+(.*?))?[ \t]*$")
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?\d*\.\d+$")


def inline_text(text: str) -> str:
    """Heading text without inline markup: links keep their label, emphasis marks go.

    >>> inline_text("**Refunds** and [returns](#returns) `v2`")
    'Refunds and returns v2'
    """
    return re.sub(r"[*_`]+", "", _LINK.sub(r"\1", text)).strip()


def scalar(value: str) -> MetadataValue:
    """A front-matter value as a scalar: quotes removed, booleans and numbers typed.

    >>> [scalar(v) for v in ['"Refunds"', "true", "42", "1.5", "2024-01-02"]]
    ['Refunds', True, 42, 1.5, '2024-01-02']
    """
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    if _INT.match(value):
        return int(value)
    if _FLOAT.match(value):
        return float(value)
    return value


def split_front_matter(text: str) -> tuple[dict[str, MetadataValue], str]:
    """Strip a leading ``---`` block of simple ``key: value`` lines; return (metadata, body).

    Nested YAML (indented lines, ``- item`` lists) is allowed inside the block but only the
    top-level scalar keys are kept. A block with other lines is not front matter and stays text.

    >>> split_front_matter("---\\ntitle: Refunds\\ntags:\\n  - shop\\n---\\n# Body\\n")
    ({'title': 'Refunds'}, '# Body\\n')
    >>> split_front_matter("---\\nnot front matter\\n---\\ntext")[0]
    {}
    """
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        return {}, text
    for end in range(1, min(len(lines), 200)):
        if lines[end].strip() in ("---", "..."):
            break
    else:
        return {}, text
    meta: dict[str, MetadataValue] = {}
    for line in lines[1:end]:
        if not line.strip() or line.lstrip().startswith("#") or line[0] in " \t-":
            continue
        match = _FRONT_KEY.match(line)
        if not match:
            return {}, text
        if match.group(2):
            meta[match.group(1)] = scalar(match.group(2))
    return meta, "\n".join(lines[end + 1 :])


class _Sections:
    """Collects body lines under the current heading path and flushes them to the builder."""

    def __init__(self) -> None:
        self.builder = TextBuilder()
        self.stack: list[tuple[int, str]] = []
        self.lines: list[str] = []
        self.first_h1: str | None = None

    @property
    def section(self) -> str | None:
        path = [title for _, title in self.stack if title]
        return " > ".join(path) or None

    def flush(self) -> None:
        self.builder.add("\n".join(self.lines), section=self.section)
        self.lines = []

    def heading(self, level: int, raw: str) -> None:
        self.flush()
        title = inline_text(raw)
        if level == 1 and self.first_h1 is None and title:
            self.first_h1 = title
        while self.stack and self.stack[-1][0] >= level:
            self.stack.pop()
        self.stack.append((level, title))
        self.lines.append(title)


def _parse(body: str) -> _Sections:
    out = _Sections()
    lines = body.split("\n")
    fence: str | None = None
    for i, line in enumerate(lines):
        fence_match = _FENCE.match(line)
        if fence is not None:
            out.lines.append(line)
            if fence_match and fence_match.group(1)[0] == fence[0] and len(fence_match.group(1)) >= len(fence):
                fence = None
            continue
        if fence_match:
            fence = fence_match.group(1)
            out.lines.append(line)
            continue
        atx = _ATX.match(line)
        if atx:
            out.heading(len(atx.group(1)), atx.group(2))
            continue
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if _is_setext_title(lines, i) and _SETEXT.match(nxt):
            out.heading(1 if nxt.strip()[0] == "=" else 2, line)
            lines[i + 1] = ""  # the underline is markup, not text
            continue
        out.lines.append(line)
    out.flush()
    return out


def _is_setext_title(lines: list[str], i: int) -> bool:
    """A one-line paragraph (blank line or start before it) that could carry a setext underline."""
    line = lines[i]
    if not line.strip() or line.startswith(("    ", "\t")) or line.lstrip().startswith(("-", "*", "+", ">", "|")):
        return False
    return i == 0 or not lines[i - 1].strip()


def load_markdown(src: Source, config: LoaderConfig) -> Loaded:
    decoded = decode_bytes(src.data, encoding=config.encoding, path=src.rel)
    meta, body = split_front_matter(decoded.text.replace("\r\n", "\n").replace("\r", "\n"))
    parsed = _parse(body)
    title = meta.get("title")
    metadata: dict[str, MetadataValue] = {**meta, "encoding": decoded.encoding}
    return single(src, parsed.builder, title=str(title) if title else parsed.first_h1, metadata=metadata)
