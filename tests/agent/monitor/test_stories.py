import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.monitor import scoring
from agent.monitor.alerts import AlertRule, list_alerts
from agent.monitor.engine import MonitorConfig, run_monitor
from agent.monitor.feeds import FeedItem
from agent.monitor.scoring import ItemScore, Sentiment
from agent.monitor.store import MonitorStore
from agent.monitor.stories import Signature, StoryConfig, StoryIndex, words
from agent.monitor.watchlist import Watchlist

DATA = Path(__file__).parent / "data"
CONTROL, SURGE = "Contoso Group", "Northwind Bank"
WATCH = Watchlist.from_dict({"companies": [{"name": CONTROL}, {"name": SURGE}]})
BODY = ("Contoso Group said on Tuesday it would cut 2,000 jobs across its European branches after profits collapsed "
        "in the third quarter, as bad loans piled up and the cost of deposits rose faster than expected.")
OTHER_BODY = ("Contoso Group has appointed a new chief financial officer who joins from a rival lender in Frankfurt, "
              "the company said in a statement, adding that the search had taken more than six months.")
COPIES = (  # one story as 25 outlets publish it
    "Contoso Group to cut 2,000 jobs as profits collapse",
    "UPDATE 1-Contoso Group to cut 2,000 jobs as profits collapse",
    "REFILE-Contoso Group to cut 2,000 jobs, as profits collapse",
    "UPDATE 2-Contoso Group will cut 2,000 jobs as profits collapse",
    "CORRECTED-Contoso Group to cut 2,000 jobs as profits collapse.",
    "Contoso Group To Cut 2,000 Jobs As Profits Collapse",
    "BRIEF-Contoso Group to cut 2,000 jobs as profits collapse - sources",
    "Contoso Group to cut 2,000 jobs as profits collapse - report",
)


def config_pair(a, b, *, body_a=BODY, body_b=BODY, when_b=0, companies=(CONTROL, CONTROL), config=None):
    config = config or StoryConfig()
    index = StoryIndex(config)
    index.add("a", "a", Signature.of(a, body_a, config), frozenset({companies[0]}))
    index.started["a"] = 0
    return index.match(Signature.of(b, body_b, config), when_b, frozenset({companies[1]}))


@pytest.mark.parametrize("copy", COPIES[1:])
def test_wire_copies_with_prefixes_punctuation_and_small_edits_join_the_story(copy):
    assert config_pair(COPIES[0], copy) is not None


def test_the_same_body_under_another_headline_and_source_is_the_same_story():
    assert config_pair("Contoso Group to cut 2,000 jobs as profits collapse",
                       "Contoso axes thousands of roles in Europe after profit slump", body_b=BODY + " Reporting by Ann Lee.")


@pytest.mark.parametrize("other", [
    "Contoso Group names new chief financial officer",
    "Contoso Group shares jump after strong quarterly profit",
    "Moody's downgrades Contoso Group debt to junk",
])
def test_different_stories_about_the_same_company_stay_apart(other):
    assert config_pair(COPIES[0], other, body_b=OTHER_BODY) is None


def test_the_same_headline_about_another_company_or_a_day_later_is_another_story():
    assert config_pair(COPIES[0], COPIES[0].replace(CONTROL, SURGE), body_b="", companies=(CONTROL, SURGE)) is None
    assert config_pair(COPIES[0], COPIES[0], when_b=86400) is None
    assert config_pair(COPIES[0], COPIES[0], when_b=3600) is not None


def test_a_templated_headline_over_a_different_body_is_another_story():
    headline = "Contoso Group to report quarterly results next week"
    assert config_pair(headline, headline, body_a=BODY, body_b=OTHER_BODY) is None
    assert config_pair(headline, headline, body_a="Short.", body_b="Also short.") is not None  # nothing else to go on


def test_words_drop_wire_prefixes_cashtags_and_punctuation():
    assert words("UPDATE 2-REFILE-$NWB: Northwind’s shares, sink!") == ["northwind", "s", "shares", "sink"]
    with pytest.raises(ValueError, match="title_threshold"):
        StoryConfig(title_threshold=0)


def test_signatures_round_trip_through_bytes():
    config = StoryConfig()
    sig = Signature.of(COPIES[0], BODY, config)
    back = Signature.from_bytes(*sig.to_bytes())
    assert back.title.jaccard(sig.title) == 1.0 and back.body.jaccard(sig.body) == 1.0
    assert Signature.of("", "short", config).to_bytes() == (None, None)


def item(n, title, published, body=BODY, source="Wire"):
    return FeedItem(feed="f.jsonl", position=n, id=f"i{n}", published=published, source=source, title=title, body=body)


def scored(items):
    out = []
    for i in items:
        s = Sentiment.from_probs({"negative": 0.9, "neutral": 0.1})
        out.append((i, ItemScore(i.id, s, s, mentions=tuple(WATCH.find(i.title)))))
    return out


def test_stories_are_stored_with_their_sizes_and_survive_reopening(tmp_path):
    db = tmp_path / "m.db"
    with MonitorStore.open(db) as store:
        store.write_batch(scored([item(0, COPIES[0], "2026-03-01T09:00:00Z"),
                                  item(1, COPIES[1], "2026-03-01T09:10:00Z", source="AP"),
                                  item(2, "Contoso Group names new chief financial officer", "2026-03-01T09:20:00Z",
                                       body=OTHER_BODY)]), [], {})
    with MonitorStore.open(db) as store:  # a new process: the index is rebuilt from stored signatures
        store.write_batch(scored([item(3, COPIES[2], "2026-03-01T10:00:00Z", source="CNBC")]), [], {})
        stories = {r["title"]: r["size"] for r in store.rows("SELECT title, size FROM stories")}
        assert stories == {COPIES[0]: 3, "Contoso Group names new chief financial officer": 1}
        assert {r["story"] for r in store.rows("SELECT story FROM items WHERE id != 'f.jsonl#i2'")} == {"f.jsonl#i0"}


def test_a_rolled_back_batch_leaves_no_story_behind(tmp_path):
    with MonitorStore.open(tmp_path / "m.db") as store:
        bad = scored([item(0, COPIES[0], "2026-03-01T09:00:00Z")]) + [(item(1, COPIES[1], "not a time"), None)]
        with pytest.raises(Exception):
            store.write_batch(bad, [], {})
        store.write_batch(scored([item(1, COPIES[1], "2026-03-01T09:10:00Z")]), [], {})
        assert [(r["id"], r["size"]) for r in store.rows("SELECT id, size FROM stories")] == [("f.jsonl#i1", 1)]


def test_a_schema_2_database_is_migrated_in_place_and_its_items_clustered(tmp_path):
    db = tmp_path / "v2.db"
    connection = sqlite3.connect(db)
    connection.executescript((DATA / "monitor-v2.sql").read_text())
    before = {t: connection.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("items", "scores", "entities", "alerts")}
    connection.close()
    feed = "/data/feeds/wire.jsonl"
    with MonitorStore.open(db) as store:
        assert store.get_meta("schema_version") == "4"
        assert {t: store.counts()[t] for t in before} == before  # every row kept
        story = {r["id"]: r["story"] for r in store.rows("SELECT id, story FROM items")}
        assert None not in story.values()
        assert story[f"{feed}#c1"] == story[f"{feed}#c2"] == story[f"{feed}#c0"] == f"{feed}#c0"
        assert story[f"{feed}#c3"] == f"{feed}#c3"
        assert store.rows("SELECT size FROM stories WHERE id = ?", (f"{feed}#c0",)) == [{"size": 3}]
        assert [a.unit for a in list_alerts(store)] == ["items"]  # raised before: it counted items
        copy = FeedItem(feed=feed, position=30, id="c9", published="2026-01-03T07:30:00Z", source="AP",
                        title="CORRECTED-Acme to cut 2,000 jobs as profits collapse",
                        body=store.rows("SELECT body FROM items WHERE id = ?", (f"{feed}#c0",))[0]["body"])
        store.write_batch([(copy, ItemScore("c9", *(Sentiment.from_probs({"negative": 1.0}),) * 2))], [], {})
        assert store.rows("SELECT size FROM stories WHERE id = ?", (f"{feed}#c0",)) == [{"size": 4}]


def syndication_feed(path):
    """Two quiet days for both companies, then Contoso's one bad story 25 times (small edits, other
    outlets) and Northwind's six different bad stories, all within three hours."""
    neutral = ("{c} opens new branch in {x}", "{c} names {x} head of retail banking", "{c} sponsors the {x} marathon",
               "{c} to hold investor day in {x}")
    places = ("Leeds", "Oslo", "Lisbon", "Warsaw", "Austin", "Dublin", "Madrid", "Toronto", "Zurich", "Milan", "Porto", "Bergen")
    records = []
    for h in range(48):
        for c in (CONTROL, SURGE):
            records.append({"published": f"2026-03-{1 + h // 24:02d}T{h % 24:02d}:{7 if c == CONTROL else 37:02d}:00Z",
                            "source": "Wire", "title": neutral[h % 4].format(c=c, x=places[h % 12]),
                            "body": f"{c} news number {h}."})
    for k in range(25):
        title = COPIES[k % len(COPIES)] if k < len(COPIES) else f"{COPIES[k % len(COPIES)]} ({k})"
        records.append({"published": f"2026-03-03T01:{k * 2:02d}:00Z", "source": f"Outlet {k}", "title": title, "body": BODY})
    bad = ("slashes outlook and warns of heavy losses", "downgraded to sell as losses mount", "misses estimates, shares sink 12%",
           "hit with record fine over money laundering", "stock falls to lowest level in a decade", "debt cut to junk by Moody's")
    for k, what in enumerate(bad):
        records.append({"published": f"2026-03-03T02:{k * 9:02d}:00Z", "source": "Wire", "title": f"{SURGE} {what}",
                        "body": f"Story {k} about {SURGE}."})
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.mark.parametrize("count, alerted", [("stories", [SURGE]), ("items", [CONTROL, SURGE])])
def test_a_syndicated_story_is_one_negative_story(tmp_path, keyword_scorer, count, alerted):
    feed = syndication_feed(tmp_path / "feed.jsonl")
    with MonitorStore.open(tmp_path / "m.db") as store:
        run_monitor(MonitorConfig(feeds=(str(feed),), rules=(AlertRule(count=count, kinds=("company",)),)),
                    store, WATCH, scorer=keyword_scorer(WATCH))
        alerts = list_alerts(store)
        assert sorted(a.key for a in alerts) == alerted
        assert {a.unit for a in alerts} == {count}
        syndicated = store.rows("SELECT size FROM stories WHERE title = ?", (COPIES[0],))
        assert syndicated == [{"size": 25}]


def test_score_takes_count_and_alerts_list_stories_with_their_copies(tmp_path, keyword_scorer, monkeypatch):
    monkeypatch.setattr(scoring, "load_scorer", lambda config, watchlist: keyword_scorer(watchlist))
    feed = syndication_feed(tmp_path / "feed.jsonl")
    watch = tmp_path / "watch.json"
    watch.write_text(json.dumps(WATCH.to_dict()))
    runner = CliRunner()
    for count, expected in (("items", 2), ("stories", 1)):
        db = str(tmp_path / f"{count}.db")
        result = runner.invoke(app, ["monitor", "score", str(feed), "--db", db, "--watchlist", str(watch),
                                     "--count", count, "--json"])
        assert result.exit_code == 0, result.output
        listed = json.loads(runner.invoke(app, ["monitor", "alerts", "--db", db, "--json"]).output)
        assert len([a for a in listed if a["kind"] == "company"]) == expected
    contoso = next(a for a in json.loads(runner.invoke(app, ["monitor", "alerts", "--db", str(tmp_path / "items.db"),
                                                               "--json", "--company", CONTROL]).output))
    top = contoso["stories"][0]
    assert (top["title"], top["copies"], len(top["sources"])) == (COPIES[0], 25, 25)
    table = runner.invoke(app, ["monitor", "alerts", "--db", str(tmp_path / "items.db"), "--company", CONTROL]).output
    assert "1 stories (25 copies)" in table and "25 x 'Contoso Group to cut 2,000 jobs" in table
    bad = runner.invoke(app, ["monitor", "score", str(feed), "--db", str(tmp_path / "x.db"), "--count", "copies"])
    assert bad.exit_code == 1 and "count must be one of stories, items" in bad.output
    assert not (tmp_path / "x.db").exists()


def test_a_copy_stored_by_another_process_is_seen_by_an_open_store(tmp_path):
    db = tmp_path / "m.db"
    with MonitorStore.open(db) as first, MonitorStore.open(db) as second:
        first.write_batch(scored([item(0, "Contoso Group names new chief financial officer", "2026-03-01T08:00:00Z",
                                       body=OTHER_BODY)]), [], {})
        second.write_batch(scored([item(1, COPIES[0], "2026-03-01T09:00:00Z")]), [], {})  # its index is built now
        first.write_batch(scored([item(2, COPIES[1], "2026-03-01T09:10:00Z")]), [], {})  # first's index predates it
        assert store_sizes(first) == {COPIES[0]: 2, "Contoso Group names new chief financial officer": 1}


def store_sizes(store):
    return {r["title"]: r["size"] for r in store.rows("SELECT title, size FROM stories")}
