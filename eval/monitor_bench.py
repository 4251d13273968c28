"""Throughput of the news monitor's local engine: items per second, end to end.

The feed is built from the finance-tweet headlines (``fin_tweets``): tweet links (``https://t.co/…``)
are stripped, as a news headline carries none, and repeated headlines are dropped so that every
item costs the models real work (the scorer scores identical texts once). With ``body=True`` each
item gets a body of three other headlines as its sentences. The watch-list is the 50 most frequent
cashtags. Timed: reading the JSONL feed, headline (+ body) sentiment, the entity tagger, the topic
classifier (when one is installed or given), watch-list and keyword-topic matching, story
clustering, SQLite transactions and alert evaluation — everything but loading the models, which is
reported separately.

Run with ``agent bench monitor`` (or ``python -m eval.monitor_bench``).
"""

from __future__ import annotations

import csv
import json
import os
import re
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

_LINK = re.compile(r"\s*https?://\S+")


def as_headline(tweet: str) -> str:
    """A finance tweet as a news headline: its links stripped (a headline carries none)."""
    return _LINK.sub("", tweet).strip()
_CASHTAG = re.compile(r"\$([A-Z]{1,5})\b")


def benchmark_feed(data_dir: Path, items: int, body: bool) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Feed records and a watch-list from ``fin_tweets`` (train + valid), deterministic."""
    folder = Path(data_dir) / "fin_tweets"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} not found; point --data-dir (or QAGENT_DATA_DIR) at the shared data sets")
    headlines: list[str] = []
    for split in ("valid", "train"):
        with (folder / f"{split}.csv").open(encoding="utf-8") as handle:
            headlines += [as_headline(row["text"]) for row in csv.DictReader(handle)]
    unique = [h for h in dict.fromkeys(headlines) if h]
    needed = items * (4 if body else 1)
    if len(unique) < needed:
        raise ValueError(f"fin_tweets has {len(unique)} distinct headlines; ask for at most {len(unique) // (4 if body else 1)} items")
    records = []
    for n in range(items):
        record = {"id": f"bench-{n}", "published": f"2026-01-{1 + n * 28 // items:02d}T{n % 24:02d}:{n % 60:02d}:00Z",
                  "source": "fin_tweets", "title": unique[n]}
        if body:
            record["body"] = " ".join(s if s.endswith((".", "!", "?")) else s + "." for s in unique[items + 3 * n: items + 3 * n + 3])
        records.append(record)
    tickers = Counter(t for r in records for t in _CASHTAG.findall(r["title"]))
    watchlist = {"companies": [{"name": t, "ticker": t} for t, _ in tickers.most_common(50)]}
    return records, watchlist


def write_benchmark_feed(data_dir: Path, out: str | Path, *, items: int, body: bool) -> str:
    """Write the benchmark's ``feed.jsonl`` and ``watchlist.json`` into ``out``; return the feed path."""
    records, watchlist = benchmark_feed(data_dir, items, body)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "feed.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    (out / "watchlist.json").write_text(json.dumps(watchlist, indent=2) + "\n", encoding="utf-8")
    return str(out / "feed.jsonl")


def run_monitor_benchmark(
    data_dir: Path, *, items: int = 2000, body: bool = False, batch_size: int = 64, threads: int | None = 1,
    runtime: str = "onnx-int8", sentiment_model: str = "default", ner_model: str = "default",
    topic_model: str = "default",
) -> dict[str, Any]:
    """Score a ``fin_tweets`` feed with the shipped models into a fresh database; return the timing."""
    import torch

    from agent.monitor.engine import MonitorConfig, run_monitor
    from agent.monitor.scoring import ScoringConfig, load_scorer, topic_model_dir
    from agent.monitor.store import MonitorStore
    from agent.monitor.watchlist import Watchlist

    records, watch = benchmark_feed(data_dir, items, body)
    watchlist = Watchlist.from_dict(watch)
    scoring = ScoringConfig(body=body, threads=threads, runtime=runtime, sentiment_model=sentiment_model,
                            ner_model=ner_model, topic_model=topic_model)
    load_started = time.perf_counter()
    scorer = load_scorer(scoring, watchlist)
    load_s = time.perf_counter() - load_started
    from agent.monitor.feeds import FeedItem

    # One small warm-up batch, so one-off set-up (first kernels, allocations) stays out of the timing.
    scorer.score([FeedItem(f"warm-{n}", "-", n, None, "", f"Warm-up headline number {n}.") for n in range(8)])
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        feed = Path(tmp) / "feed.jsonl"
        feed.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        with MonitorStore.open(Path(tmp) / "bench.db") as store:
            summary = run_monitor(MonitorConfig(feeds=(str(feed),), batch_size=batch_size, scoring=scoring),
                                  store, watchlist, scorer=scorer)
            sentences = store.db.execute("SELECT COALESCE(SUM(body_sentences), 0) FROM scores").fetchone()[0]
            topics = store.db.execute("SELECT COUNT(DISTINCT topic) FROM scores").fetchone()[0]
    from finetune.models.passes import plan_passes

    plan = plan_passes({"entities": scorer.tagger, "sentiment": scorer.sentiment, "topics": scorer.topics})
    used = topic_model_dir(scoring)
    return {
        "items": summary["scored"], "mode": "headline + body" if body else "headline", "body_sentences": int(sentences),
        "seconds": summary["elapsed_s"], "items_per_s": summary["items_per_s"], "model_load_s": round(load_s, 1),
        "batch_size": batch_size, "torch_threads": torch.get_num_threads(), "runtime": runtime, "alerts": summary["alerts"],
        "topic_model": str(used) if used else "none", "topics_found": int(topics), "encoder_passes": len(plan.passes),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


def format_results(results: list[dict[str, Any]]) -> str:
    """A small table of the runs."""
    lines = [f"{'mode':<16} {'topics':<7} {'passes':>6} {'items':>6} {'sentences':>9} {'seconds':>8} {'items/s':>8}  "
             "load avg (1 min) before/after"]
    for r in results:
        topics = "on" if r.get("topic_model", "none") != "none" else "off"
        lines.append(f"{r['mode']:<16} {topics:<7} {r.get('encoder_passes', 0):>6} {r['items']:>6} {r['body_sentences']:>9} "
                     f"{r['seconds']:>8.1f} {r['items_per_s']:>8.1f}"
                     f"  {r['load_average_before'][0]:.2f} / {r['load_average_after'][0]:.2f}")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - the same as ``agent bench monitor``
    import sys

    from eval.cli import bench_app

    bench_app(["monitor", *sys.argv[1:]], prog_name="python -m eval.monitor_bench")
