"""One shared Kiwi (Korean morphological analyser) per process, created lazily.

A Kiwi instance loads a ~500 MB language model and takes seconds to start, so the analysers and
the sentence splitter share one. Creation is guarded by a lock so two threads that ask at once do
not both load the model. The cache is keyed by process id as well: a Kiwi created before
``fork()`` has no worker threads in the child and would hang there, so a forked child builds its own.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from jisik._lazy import require

_LOCK = threading.Lock()
_INSTANCES: dict[tuple[int, int, bool], Any] = {}


def default_workers() -> int:
    """Worker threads for Kiwi's batch API: every core, but at most 8.

    Kiwi's batch ``tokenize`` scales almost linearly with threads (measured 610 → 1,270 passages/s
    from 1 to 2 threads on the 2-core development box); past 8 the ingest pipeline's other stages
    (embedding) need the cores more. It is never 0: Kiwi's batch API refuses single-thread mode.
    """
    return max(1, min(os.cpu_count() or 1, 8))


def get_kiwi(num_workers: int | None = None, *, multi_dict: bool = True) -> Any:
    """The process's Kiwi with ``num_workers`` threads (default :func:`default_workers`).

    Returns the same object on every call with the same arguments in the same process.
    ``multi_dict=False`` leaves out Kiwi's multi-word dictionary (WikiData names such as 해리 S. 트루먼,
    one token each): about 190 MB and half of Kiwi's start-up time. It changes the analysis of the
    texts that hold such a name, so an analyser that uses it has a name of its own
    (see :mod:`jisik.text.analyzers`).
    """
    workers = default_workers() if num_workers is None else max(1, num_workers)
    key = (os.getpid(), workers, multi_dict)
    kiwi = _INSTANCES.get(key)
    if kiwi is not None:
        return kiwi
    with _LOCK:
        kiwi = _INSTANCES.get(key)
        if kiwi is None:
            kiwipiepy = require("kiwipiepy", package="kiwipiepy")
            kiwi = kiwipiepy.Kiwi(num_workers=workers, load_multi_dict=multi_dict)
            _INSTANCES[key] = kiwi
    return kiwi
