"""The monitor's report: PNGs of sentiment over time per watched company and per learned topic,
alerts marked, and a CSV of alerts.

``sentiment.png`` has one panel per company (the watch-list's, or the most mentioned when there
is none): the mean sentiment score (P(positive) − P(negative)) per time bucket as a line, item
and negative-item counts as bars, and each alert episode as a red band from its window's start
to its last firing. ``topics.png`` draws the same panels per learned topic (the topic model's label
of each headline; the topics with most items in the span, up to a dozen) with the alerts of
``learned_topic`` rules; it is written only when some item has a topic. ``alerts.csv`` lists every alert with its numbers and evidence: what it counted
(``unit``: stories or items) and, for its evidence stories, how many copies from how many sources
and the learned topics of the first three (``evidence_titles_omitted``: how many more there are).
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.monitor.alerts import list_alerts, parse_duration, parse_since
from agent.monitor.store import LEARNED_TOPIC, MonitorStore
from agent.monitor.stories import stories_of

CSV_COLUMNS = ("id", "rule", "kind", "key", "start", "end", "raised_at", "window_count", "negative_count", "share",
               "baseline", "statistic", "peak", "evidence_count", "evidence_ids", "evidence_titles", "unit",
               "evidence_copies", "evidence_sources", "evidence_topics", "evidence_titles_omitted")
TITLES_LISTED = 3  # evidence titles (and topics) per CSV row; evidence_titles_omitted counts the rest
MAX_PANELS = 12  # past a dozen panels a page is unreadable; the CSV still has every alert


def write_report(store: MonitorStore, out: str | Path, *, since: str | None = None, companies: list[str] | None = None,
                 bucket: str | None = None) -> dict[str, Any]:
    """Write ``alerts.csv``, ``sentiment.png`` and (with learned topics stored) ``topics.png`` into ``out``.

    Args:
        store: The monitor database.
        out: Output folder (created).
        since: Only items and alerts from this time on (ISO time or a duration back from now).
        companies: Companies to plot (default: the watch-list's, else the 6 most mentioned).
        bucket: Time bucket of the plot (``1h``, ``1d``…; default from the time span).

    Returns:
        What was written: paths (``topics_plot`` is None without learned topics), the alert
        count, and the companies and topics plotted.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = parse_since(since) if since else None
    alerts = list_alerts(store, since=since)
    csv_path = out / "alerts.csv"
    listed = {i for a in alerts for i in a.evidence[:TITLES_LISTED]}
    titles, topics = _titles(store, listed), _topics_of(store, listed)
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for a in alerts:
            stories = stories_of(store.db, list(a.evidence))  # each evidence story with all its copies
            writer.writerow([a.id, a.rule, a.kind, a.key, a.start, a.end, a.raised_at, a.window_count,
                             a.negative_count, a.share, a.baseline, a.statistic, a.peak, len(a.evidence),
                             ";".join(a.evidence), " | ".join(titles.get(i, "") for i in a.evidence[:TITLES_LISTED]),
                             a.unit, sum(s["copies"] for s in stories), len({src for s in stories for src in s["sources"]}),
                             "; ".join(topics.get(i) or "" for i in a.evidence[:TITLES_LISTED]),  # labels hold " | "
                             max(0, len(a.evidence) - TITLES_LISTED)])
    names = _as_stored(store, companies) if companies else (_watched(store) or _most_mentioned(store, 6))
    png_path = out / "sentiment.png"
    plotted = _plot(store, "company", names[:MAX_PANELS], [a for a in alerts if a.kind == "company"], png_path, start,
                    bucket, "News sentiment per company (red: alert episodes)")
    learned = _busiest_topics(store, start, MAX_PANELS)
    topics_path = out / "topics.png"
    topics_path.unlink(missing_ok=True)  # a report of a database without topics must not keep an old one
    if learned:
        _plot(store, LEARNED_TOPIC, learned, [a for a in alerts if a.kind == LEARNED_TOPIC], topics_path, start, bucket,
              "News sentiment per learned topic (red: alert episodes)")
    return {"out": str(out), "alerts_csv": str(csv_path), "alerts": len(alerts), "plot": str(png_path),
            "companies": plotted, "topics_plot": str(topics_path) if learned else None, "topics": learned}


def _as_stored(store: MonitorStore, names: list[str]) -> list[str]:
    """Each company name as it is stored, matched without regard to case (as ``alerts --company`` is)."""
    found = []
    for name in names:
        row = store.db.execute("SELECT key FROM entities WHERE kind = 'company' AND key = ? COLLATE NOCASE "
                               "GROUP BY key ORDER BY COUNT(*) DESC LIMIT 1", (name,)).fetchone()
        found.append(row[0] if row else name)
    return found


def _watched(store: MonitorStore) -> list[str]:
    data = json.loads(store.get_meta("watchlist", "{}") or "{}")
    return [c["name"] for c in data.get("companies", [])]


def _most_mentioned(store: MonitorStore, n: int) -> list[str]:
    rows = store.rows("SELECT key, COUNT(DISTINCT item_id) AS n FROM entities WHERE kind = 'company' "
                      "GROUP BY key ORDER BY n DESC, key LIMIT ?", (n,))
    return [r["key"] for r in rows]


def _busiest_topics(store: MonitorStore, start: str | None, n: int) -> list[str]:
    where, params = ("AND i.event_time >= ?", [start]) if start else ("", [])
    rows = store.rows("SELECT s.topic, COUNT(*) AS n FROM scores s JOIN items i ON i.id = s.item_id "
                      f"WHERE s.topic IS NOT NULL {where} GROUP BY s.topic ORDER BY n DESC, s.topic LIMIT ?", [*params, n])
    return [r["topic"] for r in rows]


def _topics_of(store: MonitorStore, ids: set[str]) -> dict[str, str | None]:
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    return {r["item_id"]: r["topic"] for r in store.rows(f"SELECT item_id, topic FROM scores WHERE item_id IN ({marks})",
                                                         sorted(ids))}


def _titles(store: MonitorStore, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    return {r["id"]: r["title"] for r in store.rows(f"SELECT id, title FROM items WHERE id IN ({marks})", sorted(ids))}


def _series(store: MonitorStore, kind: str, name: str, start: str | None) -> list[tuple[datetime, float, bool]]:
    sql = ("SELECT DISTINCT i.id, i.event_time, s.score, s.label FROM items i JOIN labels e ON e.item_id = i.id "
           "JOIN scores s ON s.item_id = i.id WHERE e.kind = ? AND e.key = ?")
    params: list[Any] = [kind, name]
    if start:
        sql += " AND i.event_time >= ?"
        params.append(start)
    rows = store.rows(sql + " ORDER BY i.event_time", params)
    return [(_time(r["event_time"]), float(r["score"]), r["label"] == "negative") for r in rows]


def _plot(store: MonitorStore, kind: str, names: list[str], alerts: list[Any], path: Path, start: str | None,
          bucket: str | None, title: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    series = {name: _series(store, kind, name, start) for name in names}
    times = [t for s in series.values() for t, _, _ in s]
    span = (max(times) - min(times)).total_seconds() if times else 0
    step = parse_duration(bucket) if bucket else (3600 if span <= 3 * 86400 else 86400)
    rows = max(len(names), 1)
    fig, axes = plt.subplots(rows, 1, figsize=(10, 2.6 * rows), sharex=True, squeeze=False)
    for ax, name in zip(axes[:, 0], names or ["(no companies)" if kind == "company" else "(no topics)"]):
        points = series.get(name, [])
        buckets: dict[float, list[tuple[float, bool]]] = defaultdict(list)
        for t, score, negative in points:
            buckets[t.timestamp() // step * step].append((score, negative))
        keys = sorted(buckets)
        xs = [datetime.fromtimestamp(k, UTC) for k in keys]
        counts = ax.twinx()
        width = step / 86400 * 0.8
        counts.bar(xs, [len(buckets[k]) for k in keys], width=width, color="#cccccc", label="items")
        counts.bar(xs, [sum(n for _, n in buckets[k]) for k in keys], width=width, color="#e8a0a0", label="negative")
        counts.set_ylabel("items", color="#777777")
        ax.set_zorder(counts.get_zorder() + 1)
        ax.patch.set_visible(False)
        ax.plot(xs, [sum(s for s, _ in buckets[k]) / len(buckets[k]) for k in keys], marker="o", ms=3, color="#1f4e9c",
                label="mean sentiment")
        ax.axhline(0, color="#999999", lw=0.6)
        ax.set_ylim(-1.05, 1.05)
        ax.set_ylabel("sentiment")
        for alert in (a for a in alerts if a.key == name):
            rule_window = _alert_window(store, alert.rule)
            begin = datetime.fromtimestamp(_time(alert.start).timestamp() - rule_window, UTC)
            ax.axvspan(begin, _time(alert.end), color="red", alpha=0.18)
            ax.axvline(_time(alert.start), color="red", lw=1.2)
            ax.annotate(f"alert: {alert.negative_count}/{alert.window_count} negative", (_time(alert.start), 0.9),
                        color="red", fontsize=8, xytext=(3, 0), textcoords="offset points")
        ax.set_title(f"{name}: {len(points)} items", loc="left", fontsize=10)
    axes[-1, 0].xaxis.set_major_formatter(mdates.ConciseDateFormatter(mdates.AutoDateLocator()))
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return names


def _alert_window(store: MonitorStore, rule: str) -> int:
    for data in json.loads(store.get_meta("rules", "[]") or "[]"):
        if data.get("name") == rule:
            return parse_duration(data.get("window", "6h"))
    return 0


def _time(iso: str) -> datetime:
    return datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
