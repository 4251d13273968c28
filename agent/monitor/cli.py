"""``agent monitor score|watch|alerts|topics|report|status``: score news feeds (once or on a schedule), list
alerts and learned topics, write reports."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from finetune.cli.console import echo_json, friendly_errors
from finetune.cli.options import DeviceOption

if TYPE_CHECKING:
    from agent.monitor.alerts import AlertRule
    from agent.monitor.scoring import ScoringConfig

F = TypeVar("F", bound=Callable[..., Any])
app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Score news feeds into a SQLite database and raise negative-news alerts.")

# The options of 'score' that make its one alert rule; given none (and no --rules), the stored rules are kept.
RULE_OPTIONS = ("window", "baseline", "metric", "method", "threshold", "min_count", "min_volume", "scope", "count", "kind")
STORIES_SHOWN = 5  # evidence stories listed per alert in the table; the rest are counted
Db = Annotated[Path, typer.Option("--db", help="The monitor's SQLite database file.")]
JsonOutput = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
Since = Annotated[str | None, typer.Option(help="Only from this time: a duration back from now (24h, 7d) or an ISO date/time.")]


def quiet_on_closed_pipe(command: F) -> F:
    """End ``command`` quietly (exit 0) when the reader of its output goes away (``status | head``)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except BrokenPipeError:
            # What is still buffered would fail again when Python flushes stdout at exit.
            try:
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            except (OSError, ValueError):  # not a real file (a test's runner)
                pass
            raise typer.Exit(0) from None

    return wrapper  # type: ignore[return-value]


def scoring_threads(threads: int) -> int | None:
    """``--threads`` as the scoring config takes it: 0 (one per core) is None."""
    if threads < 0:
        raise ValueError(f"--threads must be 0 (one thread per core) or a number of threads, got {threads}")
    return threads or None


def scoring_device(device: str, runtime: str) -> str:
    """``--device`` for scoring: ``auto`` keeps the CPU when the encoder runs in ONNX Runtime (CPU
    only), since the encoder pass is most of the work; ``cuda`` with ONNX is refused by ScoringConfig."""
    from finetune.models.device import resolve_device

    if device.strip().lower() == "auto" and runtime != "torch":
        return "cpu"
    return resolve_device(device)


@app.command("score")
@friendly_errors
def score(
    ctx: typer.Context,
    feeds: Annotated[list[str], typer.Argument(help="JSONL/CSV/RSS/Atom files, folders of them, or - for standard input.")],
    db: Db,
    watchlist: Annotated[Path | None, typer.Option(help="Companies (name, ticker, aliases) and topics: JSON, YAML or CSV (default: the one the database last used).")] = None,
    json_output: JsonOutput = False,
    engine: Annotated[str, typer.Option(help="local (in-process batches) or ray (Ray Data workers).")] = "local",
    workers: Annotated[int, typer.Option(help="Ray scoring workers, each loading the models once.")] = 2,
    ray_address: Annotated[str | None, typer.Option(help="Join this Ray cluster instead of starting a local Ray.")] = None,
    batch_size: Annotated[int, typer.Option(help="Items per scoring batch and per database transaction.")] = 64,
    fmt: Annotated[str, typer.Option("--format", help="auto, jsonl, json, csv or xml (auto: by suffix, then content).")] = "auto",
    field: Annotated[list[str] | None, typer.Option("--field", help="Rename a field: FIELD=KEY, e.g. title=headline (fields: id, published, source, title, body, url).")] = None,
    body: Annotated[bool, typer.Option("--body/--no-body", help="Also score the body's sentences (--no-body: headlines only, faster).")] = True,
    max_sentences: Annotated[int, typer.Option(help="Body sentences scored per item.")] = 8,
    tag_body: Annotated[bool, typer.Option("--tag-body/--no-tag-body", help="Also run the entity tagger on body sentences (the watch-list always reads the whole body).")] = False,
    headline_weight: Annotated[float, typer.Option(help="Share of the headline in an item's overall sentiment.")] = 0.5,
    min_entity_score: Annotated[float, typer.Option(help="Ignore tagger company names below this score.")] = 0.5,
    sentiment_model: Annotated[str, typer.Option(help="Sentiment checkpoint or ensemble directory, or 'default' (the news sentiment model; agent/assets/models/sentiment is the most accurate, at two more encoder passes a headline).")] = "default",
    ner_model: Annotated[str, typer.Option(help="Entity-tagger checkpoint directory, 'default' (the news tagger that shares the sentiment model's encoder pass), or 'none' (watch-list only).")] = "default",
    topic_model: Annotated[str, typer.Option(help="Topic-classifier checkpoint directory, 'default' (the news topic model, on the same encoder pass), or 'none'.")] = "default",
    threads: Annotated[int, typer.Option(help="Threads per scoring process (0: one per core, fastest on an idle machine; 1 degrades least on a busy one).")] = 0,
    runtime: Annotated[str, typer.Option(help="Where the encoder runs: onnx-int8 (ONNX Runtime, int8 weights; fastest), onnx (float32) or torch.")] = "onnx-int8",
    rules: Annotated[Path | None, typer.Option(help="Alert rules file (JSON/YAML, one rule or a list); replaces the options below. Without it or them: the rules the database last used.")] = None,
    window: Annotated[str, typer.Option(help="Rolling alert window (30m, 6h, 1d).")] = "6h",
    baseline: Annotated[str, typer.Option(help="Period before the window that sets each name's normal level.")] = "7d",
    metric: Annotated[str, typer.Option(help="share or count of negative items.")] = "share",
    method: Annotated[str, typer.Option(help="zscore or ratio against the baseline.")] = "zscore",
    threshold: Annotated[float, typer.Option(help="z-score (or ratio) needed to raise an alert.")] = 3.0,
    min_count: Annotated[int, typer.Option(help="Negative items needed in the window.")] = 5,
    min_volume: Annotated[int, typer.Option(help="Items needed in the window.")] = 5,
    scope: Annotated[str, typer.Option(help="watchlist: alert on watch-list companies (and topics); all: also on names only the tagger found.")] = "watchlist",
    count: Annotated[str, typer.Option("--count", help="stories: near-duplicate copies (syndication, re-issues) count once; items: every copy counts.")] = "stories",
    kind: Annotated[list[str] | None, typer.Option("--kind", help="What the rule watches (repeat): company, topic (keyword watch topics), learned_topic (the topic model's labels). Default: company and topic.")] = None,
    webhook: Annotated[str | None, typer.Option(help="POST each new alert as JSON to this URL (retried; outcomes stored).")] = None,
    webhook_attempts: Annotated[int, typer.Option(help="Tries per alert.")] = 3,
    stdout_alerts: Annotated[bool, typer.Option("--stdout-alerts", help="Print one line per new alert as it is raised.")] = False,
    alert_every: Annotated[int, typer.Option(help="Evaluate alert rules after about this many new items (and at the end).")] = 1024,
    limit: Annotated[int | None, typer.Option(help="Stop after this many records (local engine).")] = None,
    max_title_chars: Annotated[int, typer.Option(help="Reject items whose headline is longer (characters).")] = 1_000,
    max_body_chars: Annotated[int, typer.Option(help="Reject items whose body is longer (characters, HTML stripped).")] = 100_000,
    max_record_bytes: Annotated[int, typer.Option(help="Reject JSONL lines and CSV rows longer than this, unread (bytes).")] = 1 << 20,
    earliest: Annotated[str, typer.Option(help="Reject items published before this date.")] = "1900-01-01",
    max_ahead_hours: Annotated[float, typer.Option(help="Reject items published more than this many hours after now.")] = 24.0,
    device: DeviceOption = "cpu",
) -> None:
    """Score news feeds (sentiment, companies, topics) into --db, raise alerts; resumes where it stopped."""
    from agent.monitor import ray_engine
    from agent.monitor.alerts import AlertRule, load_rules
    from agent.monitor.engine import MonitorConfig, run_monitor
    from agent.monitor.feeds import FeedLimits, FieldMap, feed_files
    from agent.monitor.notify import WebhookConfig
    from agent.monitor.scoring import Scorer, ScoringConfig, load_scorer
    from agent.monitor.store import MonitorStore
    from agent.monitor.watchlist import Watchlist, load_watchlist

    # Everything that can be checked is checked before the database is touched.
    # Compared by name: typer bundles a click of its own, whose ParameterSource is not click's.
    rule_options = [o for o in RULE_OPTIONS if ctx.get_parameter_source(o).name != "DEFAULT"]
    if rules is not None:
        rule_list = load_rules(str(rules))
    else:
        rule_list = [AlertRule(window=window, baseline=baseline, metric=metric, method=method, threshold=threshold,
                               min_count=min_count, min_volume=min_volume, scope=scope, count=count,
                               **({"kinds": tuple(kind)} if kind else {}))]
    config = MonitorConfig(
        feeds=tuple(feeds), fmt=fmt, fields=FieldMap.parse(field or []), batch_size=batch_size,
        limits=FeedLimits(max_title_chars=max_title_chars, max_body_chars=max_body_chars, max_record_bytes=max_record_bytes,
                          earliest=earliest, max_ahead_hours=max_ahead_hours),
        alert_every=alert_every, engine=engine, workers=workers, ray_address=ray_address,
        scoring=ScoringConfig(body=body, max_sentences=max_sentences, tag_body=tag_body, headline_weight=headline_weight,
                              min_entity_score=min_entity_score, sentiment_model=sentiment_model,
                              ner_model=ner_model, topic_model=topic_model, threads=scoring_threads(threads), runtime=runtime,
                              device=scoring_device(device, runtime)),
        rules=tuple(rule_list), webhook=WebhookConfig(webhook, attempts=webhook_attempts) if webhook else None,
        stdout_alerts=stdout_alerts and not json_output, limit=limit,
    )
    if engine == "ray" and not ray_engine.ray_available():
        raise ray_engine.EngineError(ray_engine.INSTALL_HINT)
    feed_files(config.feeds)
    _check_topic_model(config.scoring, config.rules)
    watch = load_watchlist(watchlist) if watchlist is not None else None
    with MonitorStore.open(db) as store:
        if watch is None:  # a scheduled run keeps watching what the database was last told to watch
            stored = store.get_meta("watchlist")
            watch = Watchlist.from_dict(json.loads(stored)) if stored else load_watchlist(None)
        stored_rules = store.get_meta("rules")
        if rules is None and not rule_options and stored_rules:  # ... and alerting with the rules it was last given
            config = replace(config, rules=tuple(AlertRule.from_dict(r) for r in json.loads(stored_rules)))
        watching = watch

        def models() -> Scorer:  # loaded at the first new item: a run with nothing new loads nothing
            _say_topics_note(config.scoring)
            return load_scorer(config.scoring, watching)

        if engine == "ray":
            _say_topics_note(config.scoring)
        summary = run_monitor(config, store, watch, scorer=models, progress=not json_output, echo=typer.echo)
    if json_output:
        echo_json(summary)
    else:
        typer.echo(format_summary(summary))
    if summary["failed_feeds"]:  # each unreadable feed failed alone; say which, and exit 1 as any failure does
        for failed in summary["failed_feeds"]:
            typer.echo(f"error: {failed['error']} (fix or remove it; the other feeds were read)", err=True)
        raise typer.Exit(1)


def _check_topic_model(scoring: ScoringConfig, rules: Sequence[AlertRule] = ()) -> None:
    """Refuse a --topic-model folder that is not a checkpoint, and rules naming learned topics
    that model does not know, before anything is written."""
    from agent.monitor.alerts import check_learned_topics
    from agent.monitor.scoring import topic_labels, topic_model_dir

    path = topic_model_dir(scoring)
    if path is not None and not (path / "config.json").is_file():
        raise ValueError(f"--topic-model {path}: no model checkpoint there (config.json missing); "
                         "give a topic model folder, 'default' or 'none'")
    labels = topic_labels(scoring)
    if labels is not None:
        check_learned_topics(rules, labels)


def _say_topics_note(scoring: ScoringConfig) -> None:
    """Say once, on stderr, that the default topic model is missing and items get no topic."""
    from agent.monitor.scoring import topics_note

    note = topics_note(scoring)
    if note:
        typer.echo(note, err=True)


def format_summary(summary: dict) -> str:
    """The few lines ``agent monitor score`` prints."""
    other = summary.get("duplicates_other_feed", 0)
    failed = len(summary.get("failed_feeds", []))
    lines = [
        f"read {summary['read']} records from {summary['feeds']} feed(s){f' ({failed} not readable)' if failed else ''}: "
        f"{summary['scored']} scored, "
        f"{summary['duplicates']} duplicate(s){f' ({other} from another feed)' if other else ''}, "
        f"{summary['skipped']} skipped as malformed, {summary['alerts']} alert(s) raised",
    ]
    for reason, count in sorted(summary.get("skipped_reasons", {}).items(), key=lambda kv: -kv[1])[:5]:
        lines.append(f"  skipped {count}: {reason}")
    for alert in summary["raised"]:
        lines.append(f"  alert #{alert['id']} {alert['kind']} {alert['key']!r}: {alert['negative_count']}/"
                     f"{alert['window_count']} negative {alert.get('unit', 'items')} from {alert['start']}")
    if summary.get("webhook_failed"):
        lines.append(f"  webhook: {summary['webhook_failed']} alert(s) not delivered (see 'agent monitor status')")
    lines.append(f"{summary['scored']} items in {summary['elapsed_s']:.1f} s ({summary['items_per_s']} items/s) "
                 f"with the {summary['engine']} engine into {summary['db']}")
    return "\n".join(lines)


@app.command("alerts")
@friendly_errors
@quiet_on_closed_pipe
def alerts(
    db: Db,
    since: Since = None,
    company: Annotated[str | None, typer.Option(help="Only alerts for this company or topic.")] = None,
    json_output: JsonOutput = False,
) -> None:
    """List raised alerts, oldest first, with their evidence as stories (copies, sources)."""
    from agent.monitor.alerts import list_alerts, parse_since
    from agent.monitor.store import MonitorStore
    from agent.monitor.stories import stories_of

    if since:
        parse_since(since)  # a bad --since is a usage error, found before the database is opened
    with MonitorStore.open(db, create=False) as store:
        found = [(a, stories_of(store.db, list(a.evidence))) for a in list_alerts(store, since=since, key=company)]
    if json_output:
        echo_json([{**a.to_dict(), "stories": stories} for a, stories in found])
        return
    if not found:
        typer.echo("no alerts")
        return
    typer.echo(f"{'id':>4}  {'kind':<7} {'name':<24} {'start':<20} {'end':<20} {'neg/n':>7} {'unit':<7} {'stat':>6}  evidence")
    for a, stories in found:
        copies = sum(s["copies"] for s in stories)
        typer.echo(f"{a.id:>4}  {a.kind:<7} {a.key[:24]:<24} {a.start:<20} {a.end:<20} "
                   f"{f'{a.negative_count}/{a.window_count}':>7} {a.unit:<7} {a.statistic:>6.1f}  "
                   f"{len(stories)} stories ({copies} copies)")
        for s in stories[:STORIES_SHOWN]:
            topic = f" [{s['topic']}]" if s.get("topic") else ""
            sources = ", ".join(s["sources"][:4])
            sources += f", … and {len(s['sources']) - 4} more" if len(s["sources"]) > 4 else ""
            typer.echo(f"{'':>6}{s['copies']} x {s['title'][:70]!r}{topic} ({sources})")
        if len(stories) > STORIES_SHOWN:
            typer.echo(f"{'':>6}… and {len(stories) - STORIES_SHOWN} more stories (--json lists them all)")


@app.command("topics")
@friendly_errors
@quiet_on_closed_pipe
def topics(
    db: Db,
    since: Since = None,
    window: Annotated[str | None, typer.Option(help="Only the last stretch of this length before the newest item (24h, 7d).")] = None,
    json_output: JsonOutput = False,
) -> None:
    """Per learned topic: items, stories and mean sentiment over a window (most items first)."""
    from agent.monitor.alerts import parse_since
    from agent.monitor.store import MonitorStore
    from agent.monitor.topics import check_window, format_topics, topic_summary

    # Bad input is a usage error, found before the database is opened.
    if since and window:
        raise ValueError("give --since or --window, not both")
    if since:
        parse_since(since)
    if window:
        check_window(window)
    with MonitorStore.open(db, create=False) as store:
        summary = topic_summary(store, since=since, window=window)
    if json_output:
        echo_json(summary.to_dict())
        return
    typer.echo(format_topics(summary))


@app.command("report")
@friendly_errors
@quiet_on_closed_pipe
def report(
    db: Db,
    out: Annotated[Path, typer.Option("--out", help="Folder for sentiment.png, topics.png and alerts.csv.")],
    since: Since = None,
    company: Annotated[list[str] | None, typer.Option(help="Company to plot (repeat; default: the watch-list's).")] = None,
    bucket: Annotated[str | None, typer.Option(help="Time bucket of the plot (1h, 1d; default from the span).")] = None,
    json_output: JsonOutput = False,
) -> None:
    """Write PNGs of sentiment over time per watched company and per learned topic (alerts marked) and a CSV of alerts."""
    from agent.monitor.report import write_report
    from agent.monitor.store import MonitorStore

    _check_out_folder(out)
    with MonitorStore.open(db, create=False) as store:
        written = write_report(store, out, since=since, companies=company, bucket=bucket)
    if json_output:
        echo_json(written)
        return
    topics = f", {written['topics_plot']} ({len(written['topics'])} topics)" if written["topics_plot"] else ""
    typer.echo(f"wrote {written['plot']} ({len(written['companies'])} companies){topics} and {written['alerts_csv']} "
               f"({written['alerts']} alerts)")


def _check_out_folder(out: Path) -> None:
    """Refuse an --out that is (or lies under) a file: files are written into a folder, made if missing,
    and what an existing folder holds under the same names is replaced."""
    for path in (out, *out.parents):
        if path.exists():
            if not path.is_dir():
                raise ValueError(f"--out {out}: {path} is a file, not a folder; give a folder (it is created if missing)")
            return


@app.command("status")
@friendly_errors
@quiet_on_closed_pipe
def status(db: Db, json_output: JsonOutput = False) -> None:
    """Row counts, duplicates skipped, feed cursors, recent runs, skipped lines and failed webhook deliveries."""
    from agent.monitor.sources import list_sources
    from agent.monitor.store import MonitorStore

    with MonitorStore.open(db, create=False) as store:
        info = {
            "counts": store.counts(),
            "duplicates": store.duplicates(),
            "cursors": store.rows('SELECT feed, format, "offset", position, updated_at FROM cursors ORDER BY feed'),
            "runs": store.rows("SELECT id, started_at, finished_at, engine, status, counts FROM runs ORDER BY id DESC LIMIT 5"),
            "rejects": store.rows("SELECT feed, position, reason FROM rejects ORDER BY id DESC LIMIT 20"),
            "failed_notifications": store.rows(
                "SELECT alert_id, target, attempts, error, at FROM notifications WHERE status = 'failed' ORDER BY id DESC LIMIT 20"),
            "sources": list_sources(store),
        }
    if json_output:
        echo_json(info)
        return
    typer.echo("  ".join(f"{k}={v}" for k, v in info["counts"].items()))
    dup = info["duplicates"]
    typer.echo(f"duplicates skipped: {dup['same_feed'] + dup['other_feed']} ({dup['other_feed']} the same content as "
               "another feed's item)")
    for row in info["cursors"]:
        typer.echo(f"cursor {row['feed']}: {row['format']} position {row['position']} (updated {row['updated_at']})")
    for row in info["runs"]:
        typer.echo(f"run {row['id']} {row['engine']} {row['status']} {row['started_at']} {row['counts']}")
    for row in info["rejects"]:
        typer.echo(f"skipped {row['feed']}:{row['position']}: {row['reason']}")
    for row in info["failed_notifications"]:
        typer.echo(f"undelivered alert {row['alert_id']} to {row['target']} after {row['attempts']} tries: {row['error']}")
    for row in info["sources"]:
        typer.echo(f"source {row['source']}: last poll {row['last_poll'] or 'never'}, {row['items']} item(s) stored, "
                   + (f"failing {row['failures']}x: {row['last_error']}" if row["last_error"] else "ok")
                   + f" (next poll {row['next_poll']})")


@app.command("watch")
@friendly_errors
def watch(
    sources: Annotated[list[str], typer.Argument(help="http(s) URLs of RSS/Atom/JSONL/CSV feeds, feed files or folders.")],
    db: Db,
    every: Annotated[str, typer.Option(help="Time between polls of each source (90s, 5m, 1h).")] = "5m",
    once: Annotated[bool, typer.Option("--once", help="Poll each source once and exit (1 if any failed).")] = False,
    watchlist: Annotated[Path | None, typer.Option(help="Companies and topics (default: the one the database last used).")] = None,
    rules: Annotated[Path | None, typer.Option(help="Alert rules file (default: the rules the database last used).")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds for one whole HTTP exchange, body included.")] = 30.0,
    max_bytes: Annotated[int, typer.Option(help="Refuse HTTP responses larger than this (bytes).")] = 20 << 20,
    max_redirects: Annotated[int, typer.Option(help="Redirects followed (to http/https only).")] = 5,
    max_backoff: Annotated[str, typer.Option(help="Longest wait before retrying a failing source.")] = "1h",
    fmt: Annotated[str, typer.Option("--format", help="auto, jsonl, json, csv or xml (auto: by suffix, then content).")] = "auto",
    field: Annotated[list[str] | None, typer.Option("--field", help="Rename a field: FIELD=KEY, e.g. title=headline.")] = None,
    batch_size: Annotated[int, typer.Option(help="Items per scoring batch and per database transaction.")] = 64,
    body: Annotated[bool, typer.Option("--body/--no-body", help="Also score the body's sentences (--no-body: headlines only).")] = True,
    runtime: Annotated[str, typer.Option(help="onnx-int8, onnx or torch.")] = "onnx-int8",
    threads: Annotated[int, typer.Option(help="Threads for scoring (0: one per core).")] = 0,
    topic_model: Annotated[str, typer.Option(help="Topic-classifier checkpoint directory, 'default' or 'none'.")] = "default",
    webhook: Annotated[str | None, typer.Option(help="POST each new alert as JSON to this URL.")] = None,
    stdout_alerts: Annotated[bool, typer.Option("--stdout-alerts", help="Print one line per new alert as it is raised.")] = False,
    device: DeviceOption = "cpu",
) -> None:
    """Poll sources on a schedule (conditional GETs, backoff on errors) and score what is new into --db, until SIGINT/SIGTERM."""
    import threading

    from agent.monitor.alerts import AlertRule, load_rules, parse_duration
    from agent.monitor.feeds import FieldMap
    from agent.monitor.fetch import FetchConfig
    from agent.monitor.notify import WebhookConfig
    from agent.monitor.pipeline import MonitorConfig
    from agent.monitor.scoring import ScoringConfig
    from agent.monitor.store import MonitorStore
    from agent.monitor.watch import WatchConfig, Watcher, stop_on_signals
    from agent.monitor.watchlist import Watchlist, load_watchlist

    config = WatchConfig(tuple(sources), every=parse_duration(every), max_backoff=parse_duration(max_backoff),
                         fetch=FetchConfig(timeout=timeout, max_bytes=max_bytes, max_redirects=max_redirects))
    rule_list = load_rules(str(rules)) if rules is not None else None
    watch_list = load_watchlist(watchlist) if watchlist is not None else None
    scoring = ScoringConfig(body=body, threads=scoring_threads(threads), runtime=runtime, topic_model=topic_model,
                            device=scoring_device(device, runtime))
    _check_topic_model(scoring, rule_list or ())
    with MonitorStore.open(db) as store:
        _say_topics_note(scoring)
        # Like a scheduled 'score': keep watching with what the database was last told.
        if watch_list is None:
            stored = store.get_meta("watchlist")
            watch_list = Watchlist.from_dict(json.loads(stored)) if stored else load_watchlist(None)
        if rule_list is None:
            stored = store.get_meta("rules")
            rule_list = [AlertRule.from_dict(r) for r in json.loads(stored)] if stored else [AlertRule()]
        monitor = MonitorConfig(
            feeds=config.sources, fmt=fmt, fields=FieldMap.parse(field or []), batch_size=batch_size,
            scoring=scoring, rules=tuple(rule_list),
            webhook=WebhookConfig(webhook) if webhook else None, stdout_alerts=stdout_alerts)
        stop = threading.Event()
        with Watcher(config, monitor, store, watch_list, log=lambda line: typer.echo(line, err=True),
                     echo=typer.echo) as watcher, stop_on_signals(stop, lambda line: typer.echo(line, err=True)):
            totals = watcher.run(stop, once=once)
    typer.echo(f"{totals['polls']} poll(s), {totals['failed']} failed, {totals['stored']} new item(s) stored into {db}",
               err=True)
    if once and totals["failed"]:
        raise typer.Exit(1)


@app.command("sample")
@friendly_errors
def sample(
    out: Annotated[Path, typer.Option("--out", help="Folder for news.jsonl and watchlist.json.")] = Path("qagent-monitor-sample"),
) -> None:
    """Write a generated feed with a known negative surge (and its watch-list) to try the monitor on."""
    from agent.monitor.sample import write_sample

    _check_out_folder(out)
    written = write_sample(out)
    typer.echo(f"wrote {written['feed']} ({written['items']} items, {written['malformed']} malformed lines) "
               f"and {written['watchlist']}")
