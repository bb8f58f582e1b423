"""The lexical index: BM25 over analyzer terms with bm25s (sparse matrix, saved without pickle)."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from jisik._lazy import require
from jisik.store._files import read_header, swap_folder, write_header

IdArray = npt.NDArray[np.int64]


class LexicalIndex:
    """bm25s scores for every indexed chunk at once; ``ids[i]`` is the chunk id of bm25s row ``i``.

    bm25s cannot add or remove documents (the IDF of every term changes), so the index is rebuilt
    from the stored terms after a write; this costs seconds per 100,000 chunks.
    """

    def __init__(self, *, k1: float = 1.2, b: float = 0.75, method: str = "lucene") -> None:
        self.bm25s: Any = require("bm25s")
        self.k1, self.b, self.method = k1, b, method
        self.model: Any = None
        self.ids: IdArray = np.zeros(0, dtype=np.int64)

    @property
    def size(self) -> int:
        return len(self.ids)

    def build(self, ids: IdArray, terms: Sequence[Sequence[str]]) -> None:
        self.ids = np.asarray(ids, dtype=np.int64)
        self.model = self.bm25s.BM25(k1=self.k1, b=self.b, method=self.method)
        if len(self.ids):
            with contextlib.redirect_stderr(io.StringIO()):
                self.model.index([list(t) for t in terms], show_progress=False)

    def build_streaming(self, rows: Iterable[tuple[int, Sequence[str]]]) -> None:
        """Build from ``(chunk id, terms)`` rows read one at a time, keeping token ids, not strings.

        Each document becomes a list of vocabulary ids whose int objects are shared through the
        vocabulary, instead of a list of fresh strings: about 8 bytes a term instead of about 60, which
        was most of the memory of building the index for a large knowledge base. Scores are the same as
        :meth:`build`'s (tests/test_store_local.py checks both against each other).
        """
        vocab: dict[str, int] = {}
        ids: list[int] = []
        documents: list[list[int]] = []
        for chunk_id, terms in rows:
            ids.append(chunk_id)
            documents.append([vocab.setdefault(term, len(vocab)) for term in terms])
        self.ids = np.asarray(ids, dtype=np.int64)
        self.model = self.bm25s.BM25(k1=self.k1, b=self.b, method=self.method)
        if len(self.ids):
            with contextlib.redirect_stderr(io.StringIO()):
                self.model.index((documents, vocab), show_progress=False)

    def scores(self, terms: Sequence[str]) -> npt.NDArray[np.float32]:
        """BM25 score of every indexed chunk for one query (zeros for unknown terms)."""
        if self.model is None or not len(self.ids) or not terms:
            return np.zeros(len(self.ids), dtype=np.float32)
        # "" is bm25s's placeholder for empty documents, never a real term (and not a column of an index built
        # from token ids)
        known = [t for t in terms if t and t in self.model.vocab_dict]
        if not known:
            return np.zeros(len(self.ids), dtype=np.float32)
        return np.asarray(self.model.get_scores(known), dtype=np.float32)

    def top_k(self, terms: Sequence[str], k: int, allowed: IdArray | None) -> list[tuple[int, float]]:
        scores = self.scores(terms)
        if allowed is not None:
            scores = np.where(np.isin(self.ids, allowed), scores, 0.0)
        positive = np.flatnonzero(scores > 0)
        if not len(positive):
            return []
        if len(positive) > k:
            part = np.argpartition(-scores[positive], k - 1)[:k]
            positive = positive[part]
        order = positive[np.argsort(-scores[positive], kind="stable")]
        return [(int(self.ids[i]), float(scores[i])) for i in order]

    def save(self, folder: Path, generation: int) -> None:
        staging = folder.with_name(folder.name + ".tmp")
        staging.mkdir(parents=True, exist_ok=True)
        np.save(staging / "ids.npy", self.ids, allow_pickle=False)
        if self.model is not None and len(self.ids):
            with contextlib.redirect_stderr(io.StringIO()):
                self.model.save(str(staging / "bm25s"), allow_pickle=False, show_progress=False)
        write_header(staging, "bm25", generation, count=self.size, k1=self.k1, b=self.b, method=self.method)
        swap_folder(staging, folder)

    def load(self, folder: Path, generation: int) -> bool:
        header = read_header(folder, "bm25")
        if not header or header.get("generation") != generation or header.get("method") != self.method \
                or header.get("k1") != self.k1 or header.get("b") != self.b:
            return False
        try:
            self.ids = np.load(folder / "ids.npy", allow_pickle=False)
            self.model = None
            if len(self.ids):
                with contextlib.redirect_stderr(io.StringIO()):
                    self.model = self.bm25s.BM25.load(str(folder / "bm25s"), allow_pickle=False,
                                                      show_progress=False)
        except (OSError, ValueError):
            return False
        return len(self.ids) == int(header.get("count", -1))
