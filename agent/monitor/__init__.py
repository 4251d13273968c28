"""Financial news monitoring: score news feeds, store them in SQLite, raise negative-news alerts.

Library entry points (the CLI in :mod:`agent.monitor.cli` and the web UI use these)::

    from agent.monitor import MonitorConfig, MonitorStore, load_watchlist, run_monitor, list_alerts
    with MonitorStore.open("monitor.db") as store:
        summary = run_monitor(MonitorConfig(feeds=("news.jsonl",)), store, load_watchlist("watch.json"))
        alerts = list_alerts(store, since="7d")

Modules: ``feeds`` (readers), ``watchlist`` (companies, tickers, topics), ``scoring`` (models),
``store`` (SQLite), ``alerts`` (rolling-window rules), ``notify`` (webhook, stdout), ``report``
(PNG + CSV), ``engine`` / ``ray_engine`` (local batches / Ray Data). Nothing loads a model on import.
"""

from agent.monitor.alerts import Alert, AlertRule, list_alerts
from agent.monitor.engine import MonitorConfig, run_monitor
from agent.monitor.feeds import FeedError, FieldMap
from agent.monitor.report import write_report
from agent.monitor.scoring import ModelScorer, ScoringConfig, load_scorer
from agent.monitor.store import MonitorStore, StoreError
from agent.monitor.watchlist import Watchlist, WatchlistError, load_watchlist

__all__ = [
    "Alert", "AlertRule", "FeedError", "FieldMap", "ModelScorer", "MonitorConfig", "MonitorStore", "ScoringConfig",
    "StoreError", "Watchlist", "WatchlistError", "list_alerts", "load_scorer", "load_watchlist", "run_monitor",
    "write_report",
]
