"""Document ids that are unique per file, stable across re-ingests, and still short enough to read.

Loaders name a file's documents by its path relative to the ingested folder's parent
(``jisik ingest ./manuals`` gives ``manuals/policies/returns.pdf``). Two folders with the same name
(``2023/reports`` and ``2024/reports``) would give the same id, and one file's documents would silently
replace the other's. The store therefore *claims* an id for each file when it writes it: the id the
file had before if it still owns it, else the loader's id, else the same path with more of its parent
folders (``2024/reports/a.pdf``), up to the absolute path. Every store backend uses this rule.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import PurePosixPath

from jisik.records import Chunk, Document


def candidate_ids(file_path: str, rel_id: str) -> Iterator[str]:
    """Ids for the file at absolute ``file_path`` whose loader id is ``rel_id``, shortest first.

    >>> list(candidate_ids("/data/coll/y/docs/budget.txt", "docs/budget.txt"))
    ['docs/budget.txt', 'y/docs/budget.txt', 'coll/y/docs/budget.txt', 'data/coll/y/docs/budget.txt', \
'/data/coll/y/docs/budget.txt']
    >>> list(candidate_ids("/elsewhere/b.md", "/elsewhere/b.md"))
    ['/elsewhere/b.md']
    """
    yield rel_id
    path = PurePosixPath(file_path)
    parts = path.parts
    rel_parts = PurePosixPath(rel_id).parts
    if PurePosixPath(rel_id).is_absolute() or tuple(parts[-len(rel_parts):]) != rel_parts:
        if rel_id != file_path:
            yield file_path
        return
    for count in range(len(rel_parts) + 1, len(parts)):
        yield "/".join(parts[-count:])
    yield str(path)


def claim_ids(file_path: str, documents: list[Document], chunks: list[Chunk], *, previous: str | None,
              taken: Callable[[str], bool]) -> None:
    """Rename a file's documents (and their chunks) in place to the first id another file does not own.

    ``previous`` is the id the file's documents had before (kept while nobody else owns it, so ids are
    stable); ``taken(candidate)`` says whether another file's documents already use ``candidate``. Tabular
    files keep their ``#<record>`` suffixes: ``docs/faq.csv#3`` becomes ``y/docs/faq.csv#3``.

    >>> doc = Document("docs/a.txt", "docs/a.txt", "x")
    >>> claim_ids("/c/y/docs/a.txt", [doc], [], previous=None, taken=lambda c: c == "docs/a.txt")
    >>> doc.doc_id, doc.source
    ('y/docs/a.txt', 'y/docs/a.txt')
    """
    if not documents:
        return
    base = documents[0].source
    candidates = itertools.chain([previous] if previous else [], candidate_ids(file_path, base))
    chosen = next((c for c in candidates if not taken(c)), None)
    if chosen is None or chosen == base:
        return  # the absolute path is taken only when the same file was written twice in one batch
    renamed: dict[str, str] = {}
    for doc in documents:
        if doc.source != base:
            continue
        new_id = chosen + doc.doc_id[len(base):] if doc.doc_id.startswith(base) else doc.doc_id
        renamed[doc.doc_id] = new_id
        doc.doc_id, doc.source = new_id, chosen
    for chunk in chunks:
        chunk.doc_id = renamed.get(chunk.doc_id, chunk.doc_id)
