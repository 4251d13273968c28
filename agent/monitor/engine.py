"""Run the monitor: read feeds in chunks, score them, store each chunk in one transaction, alert.

The local engine scores chunks in this process; ``config.engine == "ray"`` hands the same chunks
to Ray workers (:mod:`agent.monitor.ray_engine`). What both share (settings, chunks, the writer)
is in :mod:`agent.monitor.pipeline`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from agent.monitor.feeds import Feed, FeedError, feed_files
from agent.monitor.pipeline import MonitorConfig, Writer, chunks
from agent.monitor.scoring import ItemScore, Scorer
from agent.monitor.store import MonitorStore
from agent.monitor.watchlist import Watchlist

def run_monitor(
    config: MonitorConfig,
    store: MonitorStore,
    watchlist: Watchlist,
    *,
    scorer: Scorer | Callable[[], Scorer] | None = None,
    progress: bool = False,
    echo: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Score every feed of ``config`` into ``store``, evaluate alerts, notify; return a summary.

    Args:
        config: The run.
        store: An open monitor database.
        watchlist: Companies and topics to find.
        scorer: A :class:`Scorer`, a function making one (called on the first chunk with new
            items, so a run with nothing new loads no model), or None for the shipped models.
            The Ray engine loads the models on its workers and ignores this.
        progress: Show a progress bar on stderr.
        echo: Where ``stdout_alerts`` lines go (default: print).

    Returns:
        Counts (read, scored, duplicates, duplicates_other_feed, skipped, alerts,
        webhook_sent/failed), the alerts raised, elapsed seconds and items per second, and
        ``failed_feeds``: each feed that could not be read at all, with why. Such a feed fails
        alone: the others are still read and the alert rules still evaluated.

    Raises:
        FeedError: No feed could be read at all (after the alert rules were evaluated).
    """
    from tqdm.auto import tqdm

    feeds = feed_files(config.feeds)
    store.set_meta("watchlist", watchlist.to_dict())
    store.set_meta("rules", [r.to_dict() for r in config.rules])
    run_id = store.start_run(config.engine, feeds)
    bar = tqdm(disable=not progress, unit="item", desc="score", dynamic_ncols=True)

    def on_progress(read: int, counts: dict[str, int]) -> None:
        bar.update(read)
        bar.set_postfix(scored=counts["scored"], skipped=counts["skipped"], alerts=counts["alerts"], refresh=False)

    writer = Writer(store, config, watchlist, on_progress, echo or print)
    started, status = time.perf_counter(), "interrupted"
    try:
        if config.engine == "ray":
            from agent.monitor.ray_engine import score_with_ray

            score_with_ray(config, feeds, store, watchlist, writer)
        else:
            _score_locally(config, feeds, store, watchlist, writer, scorer)
        writer.run_alerts()
        if writer.failed and len(writer.failed) == len(feeds):  # nothing could be read: the run failed
            first = next(iter(writer.failed.values()))
            more = f" (and {len(writer.failed) - 1} more unreadable feed(s))" if len(writer.failed) > 1 else ""
            raise FeedError(first + more)
        status = "finished"
    except Exception:
        status = "failed"
        raise
    finally:
        bar.close()
        store.finish_run(run_id, status, writer.counts)
    elapsed = time.perf_counter() - started
    return {
        "db": str(store.path), "engine": config.engine, "feeds": len(feeds), **writer.counts,
        "elapsed_s": round(elapsed, 3), "items_per_s": round(writer.counts["scored"] / elapsed, 1) if elapsed else 0.0,
        "skipped_reasons": writer.reasons, "raised": [a.to_dict() for a in writer.alerts],
        "failed_feeds": [{"feed": feed, "error": error} for feed, error in writer.failed.items()],
    }


def _score_locally(config: MonitorConfig, feeds: Sequence[str], store: MonitorStore, watchlist: Watchlist,
                   writer: Writer, scorer: Scorer | Callable[[], Scorer] | None) -> None:
    from agent.monitor.scoring import load_scorer

    loaded: Scorer | None = scorer if scorer is not None and hasattr(scorer, "score") else None  # type: ignore[assignment]
    seen: set[str] = set()
    remaining = config.limit
    for name in feeds:
        try:
            with Feed(name, config.fmt, fields=config.fields, limits=config.limits) as feed:
                for chunk in chunks(feed, store.cursor(name, feed.format), config.batch_size, remaining):
                    # Items stored by an earlier run, or met earlier in this one, are not scored again.
                    known = store.known_ids([i.key for i in chunk.items])
                    fresh, ids = [], set()
                    for item in chunk.items:
                        if item.key not in known and item.key not in seen and item.key not in ids:
                            fresh.append(item)
                            ids.add(item.key)
                    seen |= ids
                    scores: list[ItemScore] = []
                    if fresh:
                        if loaded is None:
                            loaded = scorer() if callable(scorer) else load_scorer(config.scoring, watchlist)
                        scores = loaded.score(fresh)
                    writer.commit(chunk, scores)
                    if remaining is not None:
                        remaining -= chunk.read
                        if remaining <= 0:
                            return
        except FeedError as exc:  # one unreadable file must not keep the others (and the alerts) from running
            writer.fail(name, exc)
