"""Turn a file's bytes into text, detecting the encoding Korean files often come in.

Order of detection (``encoding="auto"``): a byte-order mark, then strict UTF-8, then strict CP949
(Windows Korean; a superset of EUC-KR, so EUC-KR files are reported as ``cp949``), then
charset-normalizer's best guess. Strict decoding comes first because it is exact: valid UTF-8 is
almost never anything else, and CP949 is what Korean Excel and Notepad write.

>>> decode_bytes("환불 정책".encode("cp949"))
Decoded(text='환불 정책', encoding='cp949')
>>> decode_bytes(b"\\xef\\xbb\\xbfhello")
Decoded(text='hello', encoding='utf-8-sig')
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from jisik._lazy import require
from jisik.errors import LoaderError

# Longest BOM first: the UTF-32-LE mark starts with the UTF-16-LE one.
_BOMS: list[tuple[bytes, str]] = [
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
]

# WHATWG maps these labels to windows-949 (CP949); Python's strict euc_kr would reject the
# extended Hangul that Korean pages labelled "euc-kr" routinely contain.
_KOREAN_LABELS = {
    "euc-kr",
    "euc_kr",
    "euckr",
    "ks_c_5601-1987",
    "ks_c_5601",
    "korean",
    "windows-949",
    "cp949",
}

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Decoded:
    text: str
    encoding: str


def bom_encoding(data: bytes) -> str | None:
    """The encoding a byte-order mark announces, or ``None``.

    >>> bom_encoding(b"\\xff\\xfeh\\x00")
    'utf-16'
    >>> bom_encoding(b"plain") is None
    True
    """
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name
    return None


def hangul_share(text: str) -> float:
    """Share of Hangul syllables among the non-ASCII characters (1.0 when there are none).

    A CP949 decode that "succeeds" on Latin-1 bytes gives mostly Hanja and symbols, not Hangul;
    this tells the two apart.

    >>> hangul_share("abc 한국어")
    1.0
    >>> hangul_share("caf\\u5a1a")
    0.0
    """
    non_ascii = [c for c in text if ord(c) > 127]
    if not non_ascii:
        return 1.0
    return sum("\uac00" <= c <= "\ud7a3" for c in non_ascii) / len(non_ascii)


def html_declared_charset(data: bytes) -> str | None:
    """The charset a ``<meta>`` tag declares in the first 4 KiB, normalised; ``None`` if none.

    >>> html_declared_charset(b'<meta http-equiv="Content-Type" content="text/html; charset=euc-kr">')
    'cp949'
    >>> html_declared_charset(b"<meta charset='UTF-8'>")
    'utf-8'
    """
    match = _META_CHARSET.search(data[:4096])
    if not match:
        return None
    label = match.group(1).decode("ascii", "replace").lower()
    if label in _KOREAN_LABELS:
        return "cp949"
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def decode_bytes(data: bytes, *, encoding: str = "auto", path: str = "<bytes>") -> Decoded:
    """Decode ``data``; ``encoding`` is ``"auto"`` or a codec name to use strictly.

    Raises :class:`LoaderError` for binary data (NUL bytes without a UTF-16/32 BOM) and for bytes
    that do not decode.
    """
    bom = bom_encoding(data)
    if bom is None and b"\x00" in data:
        raise LoaderError(path, "binary file (contains NUL bytes), not text", hint="check the file type")
    if encoding != "auto":
        return _strict(data, encoding, path)
    if bom is not None:
        return _strict(data, bom, path)
    for candidate in ("utf-8", "cp949"):
        try:
            text = data.decode(candidate)
        except UnicodeDecodeError:
            continue
        if candidate == "utf-8" or hangul_share(text) >= 0.5:
            return Decoded(text, candidate)
    return _best_guess(data, path)


def decode_html(data: bytes, *, encoding: str = "auto", path: str = "<bytes>") -> Decoded:
    """Like :func:`decode_bytes`, but a ``<meta charset>`` is tried before detection.

    The declaration is trusted only when the bytes decode strictly with it: pages saved from a
    browser often keep a ``euc-kr`` declaration after being re-encoded to UTF-8.
    """
    if encoding == "auto" and bom_encoding(data) is None and b"\x00" not in data:
        declared = html_declared_charset(data)
        if declared:
            try:
                return Decoded(data.decode(declared), declared)
            except UnicodeDecodeError:
                pass
    return decode_bytes(data, encoding=encoding, path=path)


def _strict(data: bytes, encoding: str, path: str) -> Decoded:
    try:
        return Decoded(data.decode(encoding), encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        raise LoaderError(
            path,
            f"cannot decode as {encoding}: {exc}",
            hint='set [loaders] encoding = "auto" or the right codec',
        ) from exc


def _best_guess(data: bytes, path: str) -> Decoded:
    charset_normalizer = require("charset_normalizer", package="charset-normalizer")
    match = charset_normalizer.from_bytes(data).best()
    if match is None or match.encoding is None:
        raise LoaderError(
            path,
            "cannot detect the text encoding",
            hint='set [loaders] encoding to the file\'s codec, e.g. "cp949"',
        )
    return Decoded(str(match), str(match.encoding))
