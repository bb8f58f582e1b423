"""Progress without a terminal: one plain line now and then, with counts, rate and time left."""

from __future__ import annotations

import time
from collections.abc import Callable

# Often enough to show a long ingest is alive in a CI log, rarely enough not to flood it.
PLAIN_PROGRESS_SECONDS = 10.0


def eta_seconds(done: int, total: int, elapsed: float) -> float | None:
    """Seconds left at the average rate so far (None before anything is done or without a total).

    >>> eta_seconds(25, 100, 10.0)
    30.0
    >>> eta_seconds(0, 100, 10.0) is None
    True
    """
    if done <= 0 or total <= 0 or elapsed <= 0:
        return None
    return max(total - done, 0) * elapsed / done


def format_seconds(seconds: float) -> str:
    """``1h02m``, ``3m05s`` or ``42s``.

    >>> format_seconds(3725), format_seconds(185), format_seconds(42.4)
    ('1h02m', '3m05s', '42s')
    """
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class PlainProgress:
    """A progress callback ``(stage, done, total)`` that prints a summary line at most every ``every`` seconds,
    and always when a stage completes."""

    def __init__(self, write: Callable[[str], object], *, every: float = PLAIN_PROGRESS_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.write = write
        self.every = every
        self.clock = clock
        self.started = clock()
        self.last = self.started
        self.state: dict[str, tuple[int, int]] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        self.state[stage] = (done, total)
        now = self.clock()
        finished = stage == "files" and total > 0 and done >= total
        if now - self.last >= self.every or finished:
            self.last = now
            self.write(self.line(now))

    def line(self, now: float) -> str:
        """E.g. ``ingesting: files 1/3, chunks 512/1,233, 40,960 tokens, 1m10s elapsed, eta 1m39s``."""
        elapsed = now - self.started
        parts = []
        for stage in ("files", "chunks"):
            if stage in self.state:
                done, total = self.state[stage]
                parts.append(f"{stage} {done:,}/{total:,}")
        if "tokens" in self.state:
            parts.append(f"{self.state['tokens'][0]:,} tokens")
        parts.append(f"{format_seconds(elapsed)} elapsed")
        done, total = self.state.get("chunks", self.state.get("files", (0, 0)))
        eta = eta_seconds(done, total, elapsed)
        if eta is not None:
            parts.append(f"eta {format_seconds(eta)}")
        return "ingesting: " + ", ".join(parts)
