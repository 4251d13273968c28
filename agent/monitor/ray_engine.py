"""The Ray engine: the same chunks as the local engine, scored by Ray Data workers.

The pipeline is ``ray.data.read_binary_files`` (one row per feed file) → ``flat_map`` (parse and
cut into the local engine's chunks, from each feed's saved cursor) → ``map_batches`` with a
callable class (each worker loads the encoder and models once, then scores chunk after chunk) →
back on the driver, in order, where the shared :class:`~agent.monitor.engine.Writer` commits
each chunk. SQLite has one writer, so only the driver writes; the workers hold no state.

Ray is optional (``pip install 'qagent[ray]'``); a local Ray is started when none is running
and stopped afterwards. ``--ray-address`` joins a running cluster instead (feeds must then be
readable at the same path on every node).
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from agent.monitor.pipeline import Chunk, MonitorConfig, Writer, chunks
from agent.monitor.feeds import STDIN, Cursor, Feed, FeedError, FeedLimits, FieldMap
from agent.monitor.scoring import ItemScore, ScoringConfig, load_scorer
from agent.monitor.store import MonitorStore
from agent.monitor.watchlist import Watchlist

INSTALL_HINT = "the Ray engine needs Ray: pip install 'qagent[ray]' (or pip install 'ray[data]')"


class EngineError(RuntimeError):
    """The Ray engine cannot run (Ray missing, or no cluster at the address)."""


def ray_available() -> bool:
    """Whether Ray Data can be imported (without importing it: that takes seconds)."""
    import importlib.util

    return importlib.util.find_spec("ray") is not None


class ChunkScorer:
    """A Ray Data worker: loads the models once, then scores each chunk handed to it."""

    def __init__(self, scoring: dict[str, Any], watchlist: dict[str, Any]) -> None:
        self.scorer = load_scorer(ScoringConfig.from_dict(scoring), Watchlist.from_dict(watchlist))

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        scores = []
        for text in batch["chunk"]:
            chunk = Chunk.from_dict(json.loads(text)) if text else None  # "": a feed's failure, nothing to score
            scores.append(json.dumps([s.to_dict() for s in self.scorer.score(chunk.items)] if chunk and chunk.items else []))
        return {**batch, "scores": scores}


def _cut(fmt: str, fields: FieldMap, starts: dict[str, tuple[int, int]], batch_size: int, order: dict[str, int],
         limits: FeedLimits | None = None):
    """The ``flat_map`` function: one feed file's bytes -> its chunks, from the saved cursor."""

    def cut(row: dict[str, Any]) -> list[dict[str, Any]]:
        name = _feed_name(row["path"], order)
        base, rows = order[name] * 1_000_000_000, []
        try:
            with Feed(name, fmt, fields=fields, stream=io.BytesIO(row["bytes"]), limits=limits) as feed:
                start = Cursor(*starts.get(name, (0, 0)))
                for chunk in chunks(feed, start, batch_size):
                    rows.append({"order": base + len(rows), "feed": name, "chunk": json.dumps(chunk.to_dict()), "error": ""})
        except FeedError as exc:
            # As in the local engine, the feed fails alone and what it gave before the error is kept:
            # its chunks so far, then a row the driver turns into the feed's failure.
            rows.append({"order": base + len(rows), "feed": name, "chunk": "", "error": str(exc)})
        return rows

    return cut


def _feed_name(path: str, order: dict[str, int]) -> str:
    """The feed as the driver named it (Ray may drop the leading slash of local paths)."""
    if path in order:
        return path
    absolute = os.path.abspath(os.sep + path.lstrip(os.sep))
    if absolute in order:
        return absolute
    raise EngineError(f"Ray read a file the run did not ask for: {path}")


def score_with_ray(config: MonitorConfig, feeds: Sequence[str], store: MonitorStore, watchlist: Watchlist,
                   writer: Writer) -> None:
    """Score ``feeds`` on Ray workers and commit each chunk through ``writer``, in feed order."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise EngineError(INSTALL_HINT) from None

    files: list[str] = []
    starts: dict[str, tuple[int, int]] = {}
    for name in feeds:
        if name == STDIN:
            continue
        try:
            with Feed(name, config.fmt, fields=config.fields) as feed:
                cursor = store.cursor(name, feed.format)
                starts[name] = (cursor.offset, cursor.position)
        except FeedError as exc:  # a feed that cannot be opened fails alone, as in the local engine
            writer.fail(name, exc)
            continue
        files.append(name)
    order = {name: n for n, name in enumerate(feeds)}
    stdin_bytes = sys.stdin.buffer.read() if STDIN in feeds else None
    if not files and stdin_bytes is None:
        return

    started_here = not ray.is_initialized()
    if started_here:
        try:
            ray.init(address=config.ray_address, include_dashboard=False, log_to_driver=False,
                     logging_level=logging.ERROR, configure_logging=True)
        except ConnectionError as exc:
            raise EngineError(f"cannot reach Ray at {config.ray_address}: {exc}") from exc
    try:
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # commit chunks in the local engine's order
        context.enable_progress_bars = False
        parts = []
        if files:
            # Reading and cutting are light next to scoring: they ask for no CPU of their own, so
            # scoring workers holding every CPU cannot starve them (which would hang the run).
            parts.append(ray.data.read_binary_files(files, include_paths=True, ray_remote_args={"num_cpus": 0}))
        if stdin_bytes is not None:
            parts.append(ray.data.from_items([{"bytes": stdin_bytes, "path": STDIN}]))
        data = parts[0] if len(parts) == 1 else parts[0].union(*parts[1:])
        scoring = {**config.scoring.to_dict(), "threads": config.scoring.threads or 1}
        scored = (
            data.flat_map(_cut(config.fmt, config.fields, starts, config.batch_size, order, config.limits), num_cpus=0)
            .map_batches(ChunkScorer, batch_size=1, concurrency=config.workers, num_cpus=1,
                         fn_constructor_kwargs={"scoring": scoring, "watchlist": watchlist.to_dict()})
        )
        rows = sorted(scored.iter_rows(), key=lambda r: r["order"]) if len(parts) > 1 else scored.iter_rows()
        for row in rows:
            if row["error"]:
                writer.fail(row["feed"], FeedError(row["error"]))
                continue
            chunk = Chunk.from_dict(json.loads(row["chunk"]))
            writer.commit(chunk, [ItemScore.from_dict(s) for s in json.loads(row["scores"])])
    finally:
        if started_here:
            ray.shutdown()
