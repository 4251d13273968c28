import json

import pytest

from agent.monitor.alerts import AlertRule, list_alerts, load_rules, parse_duration, parse_since
from agent.monitor.engine import MonitorConfig, run_monitor
from agent.monitor.sample import CONTROL_COMPANY, SURGE_COMPANY, sample_watchlist, write_sample
from agent.monitor.store import MonitorStore
from agent.monitor.watchlist import Watchlist


def run(tmp_path, keyword_scorer, name="m.db", **options):
    sample = write_sample(tmp_path / "sample")
    watchlist = Watchlist.from_dict(sample_watchlist())
    store = MonitorStore.open(tmp_path / name)
    config = MonitorConfig(feeds=(sample["feed"],), **options)
    summary = run_monitor(config, store, watchlist, scorer=keyword_scorer(watchlist))
    return store, summary


def company_alerts(store):
    return [(a.key, a.start) for a in list_alerts(store) if a.kind == "company"]


def test_a_surge_raises_one_alert_for_its_company_and_none_for_the_steady_control(tmp_path, keyword_scorer):
    store, summary = run(tmp_path, keyword_scorer, batch_size=16, alert_every=16)
    alerts = [a for a in list_alerts(store) if a.kind == "company"]
    assert [a.key for a in alerts] == [SURGE_COMPANY]
    assert CONTROL_COMPANY not in {a.key for a in list_alerts(store)}
    alert = alerts[0]
    assert "2026-01-07T00:00:00Z" <= alert.start <= "2026-01-07T03:00:00Z"
    titles = {r["id"]: r["title"] for r in store.rows("SELECT id, title FROM items")}
    assert len(alert.evidence) >= 5 and all(SURGE_COMPANY in titles[i] for i in alert.evidence)
    assert summary["alerts"] == len(list_alerts(store))


def test_evaluating_after_every_batch_raises_the_same_alerts_as_once_at_the_end(tmp_path, keyword_scorer):
    often, _ = run(tmp_path, keyword_scorer, "often.db", batch_size=8, alert_every=8)
    once, _ = run(tmp_path, keyword_scorer, "once.db", batch_size=64, alert_every=100_000)
    strip = lambda store: [(a.kind, a.key, a.start, a.end, a.evidence) for a in list_alerts(store)]  # noqa: E731
    assert strip(often) == strip(once)


def test_a_second_run_over_the_same_news_raises_nothing_again(tmp_path, keyword_scorer):
    store, first = run(tmp_path, keyword_scorer)
    store.close()
    store, second = run(tmp_path, keyword_scorer)
    assert first["alerts"] >= 1 and second["alerts"] == 0 and second["scored"] == 0


@pytest.mark.parametrize("metric, method, threshold", [("count", "zscore", 3.0), ("share", "ratio", 2.0), ("count", "ratio", 3.0)])
def test_count_and_ratio_rules_catch_the_surge_too(tmp_path, keyword_scorer, metric, method, threshold):
    rule = AlertRule(metric=metric, method=method, threshold=threshold, kinds=("company",))
    store, _ = run(tmp_path, keyword_scorer, rules=(rule,))
    assert [key for key, _ in company_alerts(store)] == [SURGE_COMPANY]


def test_scope_all_also_alerts_on_unwatched_names(tmp_path, keyword_scorer):
    store, _ = run(tmp_path, keyword_scorer, rules=(AlertRule(scope="all", kinds=("company",)),))
    assert [key for key, _ in company_alerts(store)] == [SURGE_COMPANY]  # the keyword scorer only finds watched names


def test_rule_settings_are_checked():
    with pytest.raises(ValueError, match="durations look like"):
        AlertRule(window="six hours")
    with pytest.raises(ValueError, match="metric must be"):
        AlertRule(metric="mean")
    with pytest.raises(ValueError, match="min_count"):
        AlertRule(min_count=0)
    with pytest.raises(ValueError, match="unknown rule keys"):
        AlertRule.from_dict({"windw": "6h"})
    assert parse_duration("90m") == 5400 and parse_duration("2w") == 14 * 86400


def test_rules_files_hold_one_rule_or_a_list(tmp_path):
    path = tmp_path / "rules.json"
    path.write_text(json.dumps([{"name": "fast", "window": "1h"}, {"name": "slow", "window": "1d", "metric": "count"}]))
    assert [(r.name, r.seconds[0]) for r in load_rules(str(path))] == [("fast", 3600), ("slow", 86400)]
    path.write_text(json.dumps([{"name": "a"}, {"name": "a"}]))
    with pytest.raises(ValueError, match="unique"):
        load_rules(str(path))
    (tmp_path / "rules.yaml").write_text("name: yaml-rule\nthreshold: 2.5\n")
    assert load_rules(str(tmp_path / "rules.yaml"))[0].threshold == 2.5


def test_since_takes_durations_and_dates():
    assert parse_since("2026-01-31") == "2026-01-31T00:00:00Z"
    assert parse_since("24h") < parse_since("1h")
    with pytest.raises(ValueError, match="--since takes"):
        parse_since("last week")
    for text in ("99999999d", "9" * 400 + "w"):
        with pytest.raises(ValueError, match="at most 36500d"):
            parse_since(text)
    with pytest.raises(ValueError, match="at most 36500d"):
        AlertRule(baseline="40000d")


def test_topics_alert_on_their_own_surge_across_companies(tmp_path, keyword_scorer):
    records = [{"id": f"calm-{n}", "title": f"Lawsuit against Firm{n} settled quietly",
                "published": f"2026-01-{1 + n // 4:02d}T{(n % 4) * 6:02d}:00:00Z"} for n in range(12)]
    # Six different stories (headlines differing only in the firm's name would be one syndicated story).
    surge = ("Firm0 falls as lawsuit widens", "Firm1 shares sink on lawsuit", "Lawsuit fine hits Firm2 profit",
             "Firm3 misses targets amid lawsuit", "Firm4 downgraded over lawsuit risk", "New lawsuit sends Firm5 to losses")
    records += [{"id": f"surge-{n}", "title": surge[n],
                 "published": f"2026-01-04T{10 + n // 2:02d}:{(n % 2) * 30:02d}:00Z"} for n in range(6)]
    feed = tmp_path / "topics.jsonl"
    feed.write_text("".join(json.dumps(r) + "\n" for r in records))
    watchlist = Watchlist()  # no companies: the default topics only
    with MonitorStore.open(tmp_path / "m.db") as store:
        run_monitor(MonitorConfig(feeds=(str(feed),)), store, watchlist, scorer=keyword_scorer(watchlist))
        alerts = list_alerts(store)
    assert [(a.kind, a.key, a.negative_count) for a in alerts] == [("topic", "litigation", 5)]
    assert alerts[0].evidence == tuple(f"{feed}#surge-{n}" for n in range(6))  # stored ids are FEED#ID  # the episode's later items join it
