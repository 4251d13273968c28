"""The Monitor tab: score an uploaded news feed, or open a monitor database, and show what it found.

Everything is done by the news monitor's library (:mod:`agent.monitor`): ``run_monitor`` scores
the feed into a SQLite store and raises alerts, ``write_report`` draws sentiment over time per
company with the alert episodes marked and writes the alerts with their evidence as CSV. This
module picks files, turns failures into a sentence on the page, and lays the results out.

Each uploaded feed is scored into a new database of its own under the data folder, so people
using the page at once never write into each other's results; the databases there (and the one
given to ``agent serve --monitor-db``) can be picked from a list.
"""

from __future__ import annotations

import csv
import logging
import re
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ui.messages import hide_paths

logger = logging.getLogger("ui.monitor")

FEED_TYPES = [".jsonl", ".ndjson", ".json", ".csv", ".xml", ".rss", ".atom"]
WATCHLIST_TYPES = [".json", ".yaml", ".yml", ".csv"]
DB_SUFFIXES = (".db", ".sqlite", ".sqlite3")
# Which models score uploads: the monitor's own pair (what ``agent monitor score`` uses, so the page
# and the command line agree on a feed), or the assistant's already-loaded ones (less memory).
MONITOR_MODELS = ("news", "assistant")
ALERT_COLUMNS = ["id", "company / topic", "kind", "from", "to", "negative / items", "share", "statistic", "evidence"]


def default_data_dir() -> Path:
    """``$QAGENT_HOME/ui/monitor``: where feeds uploaded on the page are scored into databases."""
    from agent.llm import qagent_home

    return qagent_home().expanduser() / "ui" / "monitor"


class NewsScorer:
    """Makes scorers with the news monitor's own models (``agent monitor score``'s defaults,
    ``agent/assets/models/news-*``), loaded at the first upload and kept for the next ones.

    Args:
        config: Scoring settings, models included (default: the command line's).
        load: Loads a scorer for a watch-list (default :func:`agent.monitor.scoring.load_scorer`).
    """

    def __init__(self, config: Any = None, load: Callable[[Any, Any], Any] | None = None) -> None:
        self.config = config
        self._load = load
        self._loaded: Any = None
        self._lock = threading.Lock()  # two first uploads at once load the models once

    def __call__(self, watchlist: Any) -> Any:
        from agent.monitor.scoring import ModelScorer, ScoringConfig, load_scorer

        with self._lock:
            if self._loaded is None:
                load = self._load or load_scorer
                self._loaded = load(self.config or ScoringConfig(), watchlist)
                return self._loaded
        base = self._loaded
        return ModelScorer(base.encoder, base.sentiment, base.tagger, watchlist, base.config)


def shared_scorer(assistant: Any) -> Callable[[Any], Any] | None:
    """Score with the assistant's already-loaded sentiment and entity models (None: it has none).

    These are not the command line's defaults (``agent monitor score`` and the page use the news
    pair, see :class:`NewsScorer`): sharing saves the memory and the load of two more models in
    the web server (``agent serve --monitor-models assistant``), at the cost of two encoder passes a
    headline and a sentiment model made for chat, less accurate on news (0.809 against the news
    model's 0.866 on the tweets' ``valid.csv``, README.md), so a feed scores differently here than on
    the command line.
    """
    nlu = getattr(assistant, "nlu", None)
    if nlu is None or getattr(nlu, "sentiment", None) is None or getattr(nlu, "encoder", None) is None:
        return None

    def make(watchlist: Any) -> Any:
        from agent.monitor.scoring import ModelScorer

        return ModelScorer(nlu.encoder, nlu.sentiment, getattr(nlu, "entities", None), watchlist)

    return make


def upload_scorer(models: str, assistant: Any = None) -> Callable[[Any], Any]:
    """The scorer factory for ``models``: ``news`` (the monitor's pair) or ``assistant`` (its loaded
    models; the news pair where the assistant has none, as a scripted one in tests)."""
    if models not in MONITOR_MODELS:
        raise ValueError(f"monitor models must be one of {', '.join(MONITOR_MODELS)}; got {models!r}")
    shared = shared_scorer(assistant) if models == "assistant" else None
    return shared if shared is not None else NewsScorer()


@dataclass(frozen=True)
class MonitorView:
    """What the tab shows for one database."""

    status: str  # Markdown
    plot: Any | None  # PIL image of sentiment over time per company
    alerts: list[list[Any]]  # rows under ALERT_COLUMNS
    totals: str  # Markdown


class MonitorHandlers:
    """The Monitor tab's actions, as plain methods so they can be tested without a browser.

    Args:
        data_dir: Folder for the databases of uploaded feeds (created when first needed).
        max_upload_bytes: Largest feed or watch-list accepted.
        known_db: A database to offer first (``agent serve --monitor-db``).
        scorer: Makes a scorer for a watch-list (:class:`NewsScorer` or :func:`shared_scorer`); None
            loads the monitor's models for each upload.
    """

    def __init__(self, data_dir: Path, max_upload_bytes: int, known_db: Path | None = None,
                 scorer: Callable[[Any], Any] | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.max_upload_bytes = max_upload_bytes
        self.known_db = Path(known_db) if known_db is not None else None
        self.scorer = scorer
        self._lock = threading.Lock()  # two uploads in the same second still get different files

    def databases(self) -> list[str]:
        """The databases a user can pick: ``--monitor-db`` first, then uploaded ones, newest first."""
        found = sorted(
            (p for p in self.data_dir.glob("*") if p.suffix in DB_SUFFIXES and p.is_file()),
            key=lambda p: p.stat().st_mtime, reverse=True,
        ) if self.data_dir.is_dir() else []
        paths = ([self.known_db] if self.known_db is not None else []) + [p for p in found if p != self.known_db]
        return [str(p) for p in paths]

    def score_upload(self, feed: str | None, watchlist: str | None) -> tuple[str | None, MonitorView]:
        """Score an uploaded feed into a new database; returns (database path or None, what to show)."""
        if not feed:
            return None, _message("Upload a news feed first (JSONL, CSV, RSS or Atom).")
        feed_path = Path(feed)
        for path, what in ((feed_path, "feed"), (Path(watchlist) if watchlist else None, "watch-list")):
            if path is not None and path.stat().st_size > self.max_upload_bytes:
                return None, _message(
                    f"The {what} {path.name} is {_size(path.stat().st_size)}; this page accepts up to "
                    f"{_size(self.max_upload_bytes)}. Score large feeds with `agent monitor score FEED --db FILE` "
                    "and pick the database here."
                )
        db = self._new_db_path(feed_path)
        try:
            summary = self._score(feed_path, Path(watchlist) if watchlist else None, db)
        except Exception as exc:  # a broken upload gets a sentence on the page, never a traceback
            _remove_db(db)
            return None, _message(f"Could not score {feed_path.name}: {_describe(exc)}")
        from agent.monitor.cli import format_summary

        report = f"\n\n```\n{format_summary(summary)}\n```"
        if summary["scored"] == 0:
            _remove_db(db)
            return None, _message(f"No news items could be read from {feed_path.name}.{report}")
        view = self.show(str(db))
        return str(db), MonitorView(hide_paths(f"Scored **{feed_path.name}**:{report}"), view.plot, view.alerts, view.totals)

    def show(self, db: str | None) -> MonitorView:
        """Plot, alerts and totals of a monitor database."""
        if not db:
            return _message("Pick a database or upload a feed.")
        if db not in self.databases():  # only the listed files, never an arbitrary path from the browser
            return _message("That database is not one this page offers; refresh the list.")
        try:
            return _view(Path(db))
        except Exception as exc:
            return _message(f"Could not open {Path(db).name}: {_describe(exc)}")

    def _new_db_path(self, feed: Path) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        stem = re.sub(r"[^\w.-]+", "_", feed.stem)[:40] or "feed"
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        with self._lock:
            for n in range(1000):
                path = self.data_dir / f"{stem}-{stamp}{f'-{n}' if n else ''}.db"
                if not path.exists():
                    from agent.monitor import MonitorStore

                    MonitorStore.open(path).close()  # reserves the name with a database (an empty file is refused)
                    return path
        raise RuntimeError("too many uploads of this feed this second")

    def _score(self, feed: Path, watchlist: Path | None, db: Path) -> dict[str, Any]:
        from agent.monitor import MonitorConfig, MonitorStore, load_watchlist, run_monitor

        watch = load_watchlist(watchlist)
        make = self.scorer
        with MonitorStore.open(db) as store:
            return run_monitor(MonitorConfig(feeds=(str(feed),)), store, watch,
                               scorer=(lambda: make(watch)) if make is not None else None)


def _view(db: Path) -> MonitorView:
    from PIL import Image

    from agent.monitor import MonitorStore, write_report
    from agent.monitor.topics import topic_summary

    with MonitorStore.open(db, create=False) as store, tempfile.TemporaryDirectory(prefix="qagent-report-") as out:
        written = write_report(store, out)
        counts = store.counts()
        learned = topic_summary(store).topics
        with Image.open(written["plot"]) as image:
            plot = image.convert("RGB")  # loaded now: the folder goes away
        with open(written["alerts_csv"], newline="", encoding="utf-8") as handle:
            alerts = [_alert_row(row) for row in csv.DictReader(handle)]
    companies = ", ".join(written["companies"]) or "none found"
    totals = (
        f"**{counts['items']}** news items · **{counts['entities']}** company/topic mentions · "
        f"**{counts['alerts']}** alert(s) · **{counts['rejects']}** malformed line(s) skipped · "
        f"**{counts['runs']}** run(s)\n\nCompanies plotted: {companies}"
    )
    if learned:  # the topic model's labels, busiest first, with how they lean
        totals += "\n\nLearned topics: " + ", ".join(f"{t.topic} ({t.stories} stories, {t.mean_sentiment:+.2f})"
                                                      for t in learned[:8])
    return MonitorView(f"Database `{db.name}`", plot, alerts, totals)


def _alert_row(row: dict[str, str]) -> list[Any]:
    evidence = f"{row['evidence_count']} {row.get('unit') or 'items'}: {row['evidence_titles']}" if row["evidence_titles"] else row["evidence_count"]
    topics = [t for t in (row.get("evidence_topics") or "").split("; ") if t]
    if topics:
        evidence = f"{evidence} (topics: {'; '.join(dict.fromkeys(topics))})"
    return [int(row["id"]), row["key"], row["kind"], row["start"], row["end"],
            f"{row['negative_count']} / {row['window_count']}", f"{float(row['share']):.0%}",
            round(float(row["statistic"]), 2), evidence]


def _choices(paths: list[str]) -> list[tuple[str, str]]:
    """Dropdown entries: the file name shown, the full path as the value."""
    return [(Path(p).name, p) for p in paths]


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:.1f} MB" if n_bytes >= 2**20 else f"{n_bytes / 1024:.1f} KB"


def _message(text: str) -> MonitorView:
    # Library errors name files by their full path: an upload's temporary folder, $QAGENT_HOME.
    return MonitorView(hide_paths(text), None, [], "")


def _describe(exc: BaseException) -> str:
    from finetune.errors import describe_error as describe

    if not isinstance(exc, (ValueError, OSError, RuntimeError)):
        logger.exception("monitor failure")
    return describe(exc)


def _remove_db(db: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


def build_monitor_tab(config: Any, assistant: Any = None, tab: Any = None) -> MonitorHandlers:
    """Lay out the Monitor tab inside the current ``gr.Blocks``/``gr.Tab`` context.

    Args:
        config: The page's :class:`ui.app.AppConfig` (data folder, ``--monitor-db``, upload limit,
            which models score uploads).
        assistant: Its loaded models score uploads with ``monitor_models="assistant"`` (see :func:`shared_scorer`).
        tab: The ``gr.Tab``; opening it refreshes the database list and the shown database.
    """
    import gradio as gr

    handlers = MonitorHandlers(config.data_dir or default_data_dir(), config.max_upload_bytes, config.monitor_db,
                               upload_scorer(config.monitor_models, assistant))
    choices = _choices(handlers.databases())
    with gr.Row():
        with gr.Column(scale=1):
            feed = gr.File(label="News feed (JSONL, CSV, RSS, Atom)", file_types=FEED_TYPES, elem_id="feed-file")
            watchlist = gr.File(label="Watch-list (optional: JSON, YAML or CSV of companies)",
                                file_types=WATCHLIST_TYPES, elem_id="watchlist-file")
            score = gr.Button("Score feed", variant="primary", elem_id="score-feed")
            gr.Markdown(f"Up to {config.max_upload_mb:g} MB per file. Or pick a database:")
            with gr.Row():
                database = gr.Dropdown(choices=choices, value=choices[0][1] if choices else None, label="Monitor database",
                                       elem_id="monitor-db", scale=4)
                refresh = gr.Button("↻", scale=1, min_width=40, elem_id="refresh-dbs")
            status = gr.Markdown(elem_id="monitor-status")
            totals = gr.Markdown(elem_id="monitor-totals")
        with gr.Column(scale=2):
            # The figure carries its own title; a label badge would cover it.
            plot = gr.Image(label="Sentiment over time per company (red: alerts)", show_label=False, type="pil",
                            format="png", interactive=False, elem_id="monitor-plot", buttons=["download", "fullscreen"])
    alerts = gr.Dataframe(headers=ALERT_COLUMNS, label="Alerts with their evidence", interactive=False,
                          wrap=True, elem_id="monitor-alerts", value=[])
    shown = [status, plot, alerts, totals]

    def unpack(view: MonitorView) -> tuple:
        return view.status, view.plot, view.alerts, view.totals

    def on_score(feed_path: str | None, watch_path: str | None):
        db, view = handlers.score_upload(feed_path, watch_path)
        listed = _choices(handlers.databases())
        picked = gr.update(choices=listed, value=db) if db else gr.update(choices=listed)
        return picked, *unpack(view)

    def on_pick(db: str | None):
        return unpack(handlers.show(db))

    def on_refresh(db: str | None):
        listed = handlers.databases()
        keep = db if db in listed else (listed[0] if listed else None)
        return gr.update(choices=_choices(listed), value=keep), *unpack(handlers.show(keep) if keep else _message(""))

    # Scoring takes seconds to minutes: one at a time, so the page stays responsive for chat.
    score.click(on_score, [feed, watchlist], [database, *shown], api_name="score_feed",
                concurrency_id="monitor", concurrency_limit=1)
    database.input(on_pick, [database], shown, api_name="show_database")
    refresh.click(on_refresh, [database], [database, *shown], api_visibility="private")
    if tab is not None:
        tab.select(on_refresh, [database], [database, *shown], api_visibility="private")
    return handlers
