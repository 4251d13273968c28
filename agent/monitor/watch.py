"""Poll feed sources on a schedule and score what is new into the monitor database.

A source is an http(s) URL of an RSS/Atom/JSONL/CSV feed, or a local file or folder. Each poll
reads a source only when it changed (a conditional GET for a URL, sizes and modification times for
local files) and hands it to :func:`agent.monitor.engine.run_monitor`, so new items are scored,
stored and alerted exactly as ``agent monitor score`` does, and items already stored are skipped.

A URL's body is saved to a file of its own under the cache folder (``DB.watch/``, one stable name
per URL) and read from there: the store's feed cursors, rejects and item keys then work for it
as for any feed file.

A failing source is retried after an exponentially growing, jittered delay (``every`` × 2^failures,
capped at ``max_backoff``); the other sources keep their schedule. :meth:`Watcher.run` stops when
its ``stop`` event is set (the CLI sets it on SIGINT/SIGTERM) after the poll in hand has finished.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from agent.monitor.engine import run_monitor
from agent.monitor.feeds import FeedError, feed_files
from agent.monitor.fetch import SCHEMES, FetchConfig, fetch, is_url
from agent.monitor.pipeline import MonitorConfig
from agent.monitor.scoring import ItemScore, Scorer
from agent.monitor.sources import SourceState, ensure_table, epoch, iso, load_state, save_state
from agent.monitor.store import MonitorStore
from agent.monitor.watchlist import Watchlist

_URL_SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".xml", ".rss", ".atom")


@dataclass(frozen=True)
class WatchConfig:
    """What to watch and how often.

    Attributes:
        sources: http(s) URLs and local feed files or folders.
        every: Seconds between polls of a source that answered.
        max_backoff: Longest wait (seconds) before retrying a failing source.
        fetch: Timeout, size cap and redirects for URLs.
    """

    sources: tuple[str, ...]
    every: float = 300.0
    max_backoff: float = 3600.0
    fetch: FetchConfig = field(default_factory=FetchConfig)

    def __post_init__(self) -> None:
        if not self.sources:
            raise ValueError("give at least one source: an http(s) URL, a feed file or a folder")
        if not self.every > 0:
            raise ValueError(f"every must be > 0 seconds, got {self.every}")
        if not self.max_backoff > 0:
            raise ValueError(f"max_backoff must be > 0 seconds, got {self.max_backoff}")
        named = []
        for source in self.sources:
            if is_url(source):
                scheme = source.split("://", 1)[0].lower()
                if scheme not in SCHEMES:
                    raise ValueError(f"source {source[:200]}: only http and https URLs are watched, not {scheme}")
                named.append(source)
            else:
                feed_files([source])  # a typo is found now, not at the first poll
                named.append(str(Path(source).resolve()))  # one state row whatever the working folder
        object.__setattr__(self, "sources", tuple(dict.fromkeys(named)))

    def backoff(self, failures: int, rng: random.Random) -> float:
        """Seconds before the next try after ``failures`` failures in a row (jittered by ±20%,
        so sources that failed together do not retry together)."""
        delay = min(max(self.max_backoff, self.every), self.every * 2.0 ** min(failures, 30))
        return delay * rng.uniform(0.8, 1.2)


@dataclass(frozen=True)
class PollResult:
    """What one poll of one source did."""

    source: str
    status: str  # "read", "not modified" or "failed"
    stored: int = 0
    error: str = ""
    next_poll: float = 0.0


class _LoadOnce:
    """A scorer made on the first batch with new items, then kept for every later poll."""

    def __init__(self, make: Callable[[], Scorer]) -> None:
        self._make = make
        self._scorer: Scorer | None = None

    def score(self, items: Sequence[Any]) -> list[ItemScore]:
        if self._scorer is None:
            self._scorer = self._make()
        return self._scorer.score(items)


class Watcher:
    """Polls ``config.sources`` into ``store`` with the scoring and alert settings of ``monitor``."""

    def __init__(self, config: WatchConfig, monitor: MonitorConfig, store: MonitorStore, watchlist: Watchlist, *,
                 scorer: Scorer | Callable[[], Scorer] | None = None, cache_dir: Path | None = None,
                 log: Callable[[str], None] | None = None, echo: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.time, rng: random.Random | None = None,
                 client: Any = None) -> None:
        """
        Args:
            config: Sources and schedule.
            monitor: Scoring, alert and feed settings (its ``feeds`` are replaced per poll).
            store: An open monitor database.
            watchlist: Companies and topics to find.
            scorer: A scorer, a function making one, or None for the shipped models; made at most
                once, on the first new item.
            cache_dir: Where URL bodies are kept (default: ``DB.watch`` beside the database).
            log: Where progress and error lines go (default: standard error).
            echo: Where ``stdout_alerts`` lines go.
            clock: Seconds since the epoch (tests pass a fake).
            rng: Jitter for the backoff.
            client: An ``httpx.Client`` (default: one made here, kept open between polls).
        """
        from agent.monitor.scoring import load_scorer

        self.config, self.monitor, self.store, self.watchlist = config, monitor, store, watchlist
        if scorer is not None and hasattr(scorer, "score"):
            self.scorer: Any = scorer
        else:
            self.scorer = _LoadOnce(scorer or (lambda: load_scorer(monitor.scoring, watchlist)))  # type: ignore[arg-type]
        self.cache_dir = cache_dir or store.path.with_name(store.path.name + ".watch")
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.echo = echo
        self.clock, self.rng = clock, rng or random.Random()
        self._client = client
        ensure_table(store)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def __enter__(self) -> Watcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, stop: threading.Event | None = None, *, once: bool = False) -> dict[str, int]:
        """Poll until ``stop`` is set (``once``: every source once, backoff or not); return totals."""
        stop = stop or threading.Event()
        totals = {"polls": 0, "failed": 0, "stored": 0}
        due = {s: self._first_due(s) for s in self.config.sources}
        while not stop.is_set():
            for source in self.config.sources:
                if stop.is_set():
                    break
                if not once and due[source] > self.clock():
                    continue
                result = self.poll(source)
                due[source] = result.next_poll
                totals["polls"] += 1
                totals["failed"] += result.status == "failed"
                totals["stored"] += result.stored
            if once:
                break
            stop.wait(max(0.0, min(due.values()) - self.clock()))
        return totals

    def poll(self, source: str) -> PollResult:
        """Poll one source now; record how it went. Never raises for the source's own faults."""
        state = load_state(self.store, source, "url" if is_url(source) else "path")
        now = self.clock()
        state.last_poll, state.polls = iso(now), state.polls + 1
        before = self._last_item()
        try:
            status, stored = self._read_url(state) if state.kind == "url" else self._read_path(state)
        except Exception as exc:  # one source's failure must not stop the others
            from finetune.errors import describe_error

            # Batches committed before the failure stay stored: count them.
            stored = self._last_item() - before
            state.failures += 1
            state.items += stored
            state.last_error = describe_error(exc)
            wait = self.config.backoff(state.failures, self.rng)
            result = PollResult(source, "failed", stored, error=state.last_error, next_poll=self.clock() + wait)
            self.log(f"{source}: {state.last_error} (failure {state.failures} in a row; next try in {wait:.0f} s)"
                     + (f"; {stored} new item(s) stored before it" if stored else ""))
        else:
            state.failures, state.last_error, state.last_success = 0, "", iso(now)
            state.items += stored
            result = PollResult(source, status, stored, next_poll=self.clock() + self.config.every)
            self.log(f"{source}: {stored} new item(s) stored" if status == "read" else f"{source}: {status}")
        state.next_poll = iso(result.next_poll)
        save_state(self.store, state)
        return result

    def _first_due(self, source: str) -> float:
        # A source that was failing keeps its backoff across restarts; the others are read at once.
        state = load_state(self.store, source, "")
        return (epoch(state.next_poll) or 0.0) if state.failures else 0.0

    def _read_url(self, state: SourceState) -> tuple[str, int]:
        if self._client is None:
            import httpx

            self._client = httpx.Client()
        got = fetch(state.source, etag=state.etag, last_modified=state.last_modified,
                    config=self.config.fetch, client=self._client)
        if got.status == 304:
            return "not modified", 0
        path = self._cache_path(state.source)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.part")
        partial.write_bytes(got.body)
        os.replace(partial, path)
        stored = self._score(path, state.source)
        # Saved only once the body was read: a body that failed is fetched (and fails) again.
        state.etag, state.last_modified = got.etag, got.last_modified
        return "read", stored

    def _read_path(self, state: SourceState) -> tuple[str, int]:
        files = feed_files([state.source])
        signature = hashlib.sha256(repr([(f, *_stat(f)) for f in files]).encode()).hexdigest()[:16]
        if signature == state.etag:
            return "not modified", 0
        stored = self._score(state.source, state.source)
        state.etag = signature
        return "read", stored

    def _score(self, feed: str | Path, source: str) -> int:
        """Score ``feed`` (a local source, or the file holding a URL's body); the new items stored.

        A file that cannot be read fails alone: the source's other files are read and it is
        logged. Only when no file of the source could be read does the poll fail (FeedError).
        """
        config = replace(self.monitor, feeds=(str(feed),))
        try:
            summary = run_monitor(config, self.store, self.watchlist, scorer=self.scorer, echo=self.echo)
        except FeedError as exc:
            if not is_url(source):
                raise
            # A URL's errors name the URL, not the cache file its body was saved to.
            raise FeedError(str(exc).replace(str(Path(feed).resolve()), source).replace(str(feed), source)) from exc
        for failed in summary["failed_feeds"]:  # only some files of a folder: the poll read the others
            self.log(f"{source}: skipped {failed['error']}")
        return int(summary["scored"])

    def _last_item(self) -> int:
        # Items are only ever added, each at the next rowid, so the difference counts the items stored.
        return int(self.store.db.execute("SELECT COALESCE(MAX(rowid), 0) FROM items").fetchone()[0])

    def _cache_path(self, url: str) -> Path:
        # One name per URL, forever: items are keyed by feed name, so a new name would store them again.
        suffix = Path(url.split("?", 1)[0].split("#", 1)[0]).suffix.lower()
        name = hashlib.sha256(url.encode()).hexdigest()[:20]
        return self.cache_dir / (name + (suffix if suffix in _URL_SUFFIXES else ".feed"))


def _stat(path: str) -> tuple[int, int]:
    info = os.stat(path)
    return info.st_size, info.st_mtime_ns


@contextmanager
def stop_on_signals(stop: threading.Event, log: Callable[[str], None] | None = None) -> Iterator[None]:
    """Set ``stop`` on SIGINT or SIGTERM (instead of raising) while inside; the main thread only."""
    say = log or (lambda line: print(line, file=sys.stderr, flush=True))

    def handler(signum: int, frame: Any) -> None:
        stop.set()
        say(f"{signal.Signals(signum).name}: stopping after the poll in hand")

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
