import io
import json
from datetime import UTC, datetime, timedelta

import pytest

from agent.monitor.engine import MonitorConfig, run_monitor
from agent.monitor.feeds import (
    FeedError,
    FieldMap,
    FeedItem,
    FeedLimits,
    Malformed,
    feed_files,
    parse_time,
    read_feed,
    stable_id,
)
from agent.monitor.store import MonitorStore
from agent.monitor.watchlist import Watchlist

RSS = b"""<?xml version="1.0"?>
<rss version="2.0"><channel><title>Wire</title>
<item><title>Acme &amp; Co shares fall</title><description>&lt;p&gt;Shares fell 5%.&lt;/p&gt;</description>
<pubDate>Tue, 06 Jan 2026 10:00:00 GMT</pubDate><guid>g-1</guid><link>https://example.com/1</link></item>
<item><title>No date here</title></item>
</channel></rss>"""
ATOM = b"""<feed xmlns="http://www.w3.org/2005/Atom"><title>Atom Wire</title>
<entry><id>urn:1</id><title>Atom headline</title><updated>2026-01-02T10:00:00+01:00</updated>
<summary>Summary text.</summary><link rel="alternate" href="https://example.com/a"/></entry></feed>"""


def items(records):
    return [r.entry for r in records if isinstance(r.entry, FeedItem)]


def test_jsonl_items_malformed_lines_and_positions():
    data = (b'{"id": "a", "title": "Acme sued", "published": "2026-01-01T10:00:00Z"}\n\nnot json\n'
            b'{"title": "no id", "body": "Body.", "published": "Mon, 05 Jan 2026 16:45:00 +0200"}\n'
            b'{"title": "bad time", "published": "yesterday"}\n[1, 2]\n{"published": "2026-01-01"}\n')
    records = list(read_feed("news.jsonl", stream=io.BytesIO(data)))
    good = items(records)
    assert [i.id for i in good] == ["a", stable_id("", "no id", "2026-01-05T14:45:00Z", "Body.")]
    assert good[1].published == "2026-01-05T14:45:00Z"
    bad = [(r.entry.position, r.entry.reason) for r in records if isinstance(r.entry, Malformed)]
    assert bad == [(3, "invalid JSON (Expecting value, column 1)"), (5, "unreadable published time 'yesterday'"),
                   (6, "expected a JSON object, got list"), (7, "no title or body")]



# -- hostile input: each malformed line or row is rejected with its reason, and reading goes on ----------------------

def reasons(records):
    return [(r.entry.position, r.entry.reason) for r in records if isinstance(r.entry, Malformed)]


def jsonl(*records):
    return ("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)).encode()


def test_dates_outside_1900_to_a_day_ahead_are_rejected_and_stored_padded():
    ahead = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    soon = (datetime.now(UTC) + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    data = jsonl({"title": "too old", "published": "0999-01-01T00:00:00Z"}, {"title": "epoch", "published": -40_000_000_000},
                 {"title": "too old too", "published": "1899-12-31T23:59:59Z"},
                 {"title": "too far ahead", "published": ahead},
                 {"title": "first allowed", "published": "1900-01-01T00:00:00Z"},
                 {"title": "soon", "published": soon})
    records = list(read_feed("-", stream=io.BytesIO(data)))
    assert [(i.title, i.published) for i in items(records)] == [("first allowed", "1900-01-01T00:00:00Z"), ("soon", soon)]
    assert reasons(records) == [(1, "published time before 1900-01-01 ('0999-01-01T00:00:00Z')"),
                                (2, "published time before 1900-01-01 ('0702-06-15T00:53:20Z')"),
                                (3, "published time before 1900-01-01 ('1899-12-31T23:59:59Z')"),
                                (4, f"published time more than 24h ahead ('{ahead}')")]
    assert parse_time(-40_000_000_000) == "0702-06-15T00:53:20Z"  # one padded form: the strings sort as the times


def test_the_date_window_is_configurable():
    data = jsonl({"title": "old", "published": "1850-06-01"}, {"title": "older", "published": "1700-01-01"})
    records = list(read_feed("-", stream=io.BytesIO(data), limits=FeedLimits(earliest="1800-01-01")))
    assert [i.title for i in items(records)] == ["old"] and reasons(records)[0][1].startswith("published time before 1800")
    with pytest.raises(ValueError, match="earliest"):
        FeedLimits(earliest="someday")
    with pytest.raises(ValueError, match="max_ahead_hours"):
        FeedLimits(max_ahead_hours=-1)


@pytest.mark.parametrize("published", ['"0001-01-01T00:00:00+01:00"', "Infinity", "-Infinity", "NaN", "1e20", "-1e20",
                                       "1" + "0" * 400, '"Fri, 31 Dec 9999 23:00:00 -0500"', '"9999-12-31T23:00:00-05:00"'])
def test_overflowing_dates_are_bad_lines_and_the_feed_goes_on(published):
    data = b'{"title": "bad date", "published": ' + published.encode() + b'}\n{"title": "next line"}\n'
    records = list(read_feed("-", stream=io.BytesIO(data)))
    assert [i.title for i in items(records)] == ["next line"]
    (position, reason), = reasons(records)
    assert position == 1 and reason.startswith("published time out of range")


def test_overflowing_dates_in_csv_and_rss_are_rejected_too():
    data = b'title,published\nbad,0001-01-01T00:00:00+01:00\ngood,2026-01-01\n'
    records = list(read_feed("f.csv", stream=io.BytesIO(data)))
    assert [i.title for i in items(records)] == ["good"] and [p for p, _ in reasons(records)] == [2]
    rss = RSS.replace(b"Tue, 06 Jan 2026 10:00:00 GMT", b"Fri, 31 Dec 9999 23:00:00 -0500")
    records = list(read_feed("f.xml", stream=io.BytesIO(rss)))
    assert [i.title for i in items(records)] == ["No date here"] and [p for p, _ in reasons(records)] == [1]


def test_lines_that_do_not_decode_as_json_values_are_bad_lines():
    data = jsonl('{"title": "deep", "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
                 '{"title": "huge number", "x": ' + "7" * 5000 + "}", {"title": "next"})
    records = list(read_feed("-", stream=io.BytesIO(data)))
    assert [i.title for i in items(records)] == ["next"] and [p for p, _ in reasons(records)] == [1, 2]


@pytest.mark.parametrize("field", ["title", "body", "source", "id"])
def test_a_lone_surrogate_is_a_bad_line_and_the_feed_goes_on(tmp_path, keyword_scorer, field):
    # JSON escapes can spell "\\udc80", which no UTF-8 encoder (the tokenizer's, SQLite's) accepts.
    bad = '{"title": "Acme falls", "body": "Body.", "%s": "bad \\udc80 text"}' % field
    data = jsonl(bad, {"id": "ok", "title": "Acme next line"})
    records = list(read_feed("f.jsonl", stream=io.BytesIO(data)))
    assert [i.title for i in items(records)] == ["Acme next line"]
    assert reasons(records) == [(1, f"{field} is not valid Unicode (lone surrogate '\\udc80' at character 5)")]
    feed = tmp_path / "f.jsonl"
    feed.write_bytes(data)
    watchlist = Watchlist.from_dict({"companies": [{"name": "Acme"}]})
    with MonitorStore.open(tmp_path / "m.db") as store:
        summary = run_monitor(MonitorConfig(feeds=(str(feed),)), store, watchlist, scorer=keyword_scorer(watchlist))
        assert (summary["scored"], summary["skipped"]) == (1, 1)
        assert summary["skipped_reasons"] == {f"{field} is not valid Unicode": 1}
        (reject,) = store.rows("SELECT reason, raw FROM rejects")
        assert "\\udc80" in reject["raw"]  # the evidence is kept, escaped so that it can be stored


def test_oversized_lines_and_fields_are_rejected_and_the_feed_goes_on():
    huge = json.dumps({"title": "huge line", "body": "x " * 1_500_000})  # 3 MB: over the 1 MiB line cap
    data = jsonl({"title": "t" * 1_001}, huge, {"title": "long body", "body": "word " * 20_001}, {"title": "fine"})
    records = list(read_feed("-", stream=io.BytesIO(data)))
    assert [i.title for i in items(records)] == ["fine"]
    assert reasons(records) == [(1, "title over 1,000 characters (1,001; --max-title-chars)"),
                                (2, f"record over 1,048,576 bytes ({len(huge) + 1:,}; --max-record-bytes)"),
                                (3, "body over 100,000 characters (100,004; --max-body-chars)")]
    assert len(next(r.entry for r in records if r.entry.position == 2).raw) <= 500  # evidence kept, not the line
    assert records[-1].offset == len(data)  # the cursor still counts every byte


def test_size_caps_are_configurable_and_apply_to_csv_rows():
    limits = FeedLimits(max_title_chars=10, max_body_chars=20, max_record_bytes=100)
    data = b"title,body\nshort,fine\n" + b"a" * 11 + b",x\nok," + b"b" * 21 + b"\nbig," + b"c" * 200 + b"\nlast,one\n"
    records = list(read_feed("f.csv", stream=io.BytesIO(data), limits=limits))
    assert [i.title for i in items(records)] == ["short", "last"]
    assert [(p, r.split(" (")[0]) for p, r in reasons(records)] == [
        (3, "title over 10 characters"), (4, "body over 20 characters"), (5, "record over 100 bytes")]
    assert records[-1].offset == len(data)
    with pytest.raises(ValueError, match="max_body_chars"):
        FeedLimits(max_body_chars=0)


def test_a_bad_byte_in_csv_rejects_its_row_at_its_line_and_the_feed_goes_on():
    rows = [f"{n},Headline number {n} about the markets today".encode() for n in range(400)]  # past the decoder's chunks
    rows[300] = b"300,Headline with a bad byte \xff here"
    data = b"id,title\n" + b"\n".join(rows) + b"\n"
    records = list(read_feed("f.csv", stream=io.BytesIO(data)))
    assert len(items(records)) == 399 and reasons(records) == [(302, "not UTF-8")]
    assert records[-1].offset == len(data)
    rest = list(read_feed("f.csv", stream=io.BytesIO(data), start=records[299].cursor))
    assert [r.entry.position for r in rest][:3] == [302, 303, 304]


def test_csv_with_bare_carriage_returns_and_a_broken_header():
    data = b"title,body\rone,first\rtwo,second\r"
    assert [i.title for i in items(read_feed("f.csv", stream=io.BytesIO(data)))] == ["one", "two"]
    with pytest.raises(FeedError, match="header .*line 1.* not UTF-8"):
        list(read_feed("f.csv", stream=io.BytesIO(b"ti\xfftle,body\nx,y\n")))



def test_an_old_dated_negative_item_is_rejected_and_alerting_goes_on(tmp_path, keyword_scorer):
    watch = Watchlist.from_dict({"companies": [{"name": "Acme"}]})
    feed = tmp_path / "f.jsonl"
    feed.write_text(jsonl({"id": "old", "title": "Acme shares plunge", "published": "0999-01-01T00:00:00Z"},
                          {"id": "new", "title": "Acme shares plunge", "published": "2026-01-01T00:00:00Z"}).decode())
    with MonitorStore.open(tmp_path / "m.db") as store:
        for _ in range(2):  # every later run on the database works too
            summary = run_monitor(MonitorConfig(feeds=(str(feed),)), store, watch, scorer=keyword_scorer(watch))
        assert store.counts()["items"] == 1
        assert [r["reason"] for r in store.rows("SELECT reason FROM rejects")] == [
            "published time before 1900-01-01 ('0999-01-01T00:00:00Z')"]
    assert summary["read"] == 0


def test_ids_are_scoped_by_feed_and_only_content_ids_dedup_across_feeds(tmp_path, keyword_scorer):
    watch = Watchlist.from_dict({"companies": [{"name": "Acme"}]})
    wire = {"title": "Acme wire story without an id", "published": "2026-01-01T10:00:00Z"}
    a, b, hostile = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "hostile.jsonl"
    a.write_text(jsonl({"id": "1", "title": "Acme story of feed A"}, wire).decode())
    b.write_text(jsonl({"id": "1", "title": "Acme story of feed B"}, wire).decode())
    hostile.write_text(jsonl({"id": "1", "title": "Spam"}, {"id": stable_id("", wire["title"], wire["published"], ""),
                                                           "title": "Spam claiming the wire story's id"}).decode())
    with MonitorStore.open(tmp_path / "m.db") as store:
        summary = run_monitor(MonitorConfig(feeds=(str(hostile), str(a), str(b))), store, watch,
                              scorer=keyword_scorer(watch))
        titles = sorted(r["title"] for r in store.rows("SELECT title FROM items"))
        assert titles == sorted(["Spam", "Spam claiming the wire story's id", "Acme story of feed A",
                                 "Acme story of feed B", wire["title"]])
        assert (summary["scored"], summary["duplicates"], summary["duplicates_other_feed"]) == (5, 1, 1)
        assert store.rows("SELECT feed FROM items WHERE title = ?", (wire["title"],))[0]["feed"] == str(a)


def test_stable_id_ignores_case_and_spacing_but_not_content():
    a = stable_id("Wire", "Acme  Falls", "2026-01-01T00:00:00Z", "Body")
    assert a == stable_id("wire", "acme falls ", "2026-01-01T00:00:00Z", "body")
    assert a != stable_id("Wire", "Acme Rises", "2026-01-01T00:00:00Z", "Body")
    assert a.startswith("sha256:")


def test_resuming_from_a_cursor_reads_only_what_follows():
    lines = [json.dumps({"id": str(n), "title": f"t{n}"}) for n in range(5)]
    data = ("\n".join(lines) + "\n").encode()
    records = list(read_feed("news.jsonl", stream=io.BytesIO(data)))
    rest = list(read_feed("news.jsonl", stream=io.BytesIO(data), start=records[1].cursor))
    assert [r.entry.id for r in rest] == ["2", "3", "4"]
    assert [r.entry.position for r in rest] == [3, 4, 5]


def test_csv_with_bom_multiline_fields_ragged_rows_and_resume():
    data = '\ufeffid,headline,published\n1,"Two\nlines",2026-01-01\n2,short\n3,third,1767225600\n'.encode()
    fields = FieldMap.parse(["title=headline"])
    records = list(read_feed("feed.csv", fields=fields, stream=io.BytesIO(data)))
    assert [(i.id, i.title, i.published) for i in items(records)] == [
        ("1", "Two lines", "2026-01-01T00:00:00Z"), ("3", "third", "2026-01-01T00:00:00Z")]
    assert [(r.entry.position, r.entry.reason) for r in records if isinstance(r.entry, Malformed)] == [
        (4, "expected 3 columns, got 2")]
    assert records[-1].offset == len(data)
    rest = list(read_feed("feed.csv", fields=fields, stream=io.BytesIO(data), start=records[0].cursor))
    assert [r.entry.position for r in rest] == [4, 5]


def test_rss_and_atom_items():
    rss = items(read_feed("feed.xml", stream=io.BytesIO(RSS)))
    assert (rss[0].id, rss[0].title, rss[0].body, rss[0].source, rss[0].url, rss[0].published) == (
        "g-1", "Acme & Co shares fall", "Shares fell 5%.", "Wire", "https://example.com/1", "2026-01-06T10:00:00Z")
    assert rss[1].published is None and rss[1].id.startswith("sha256:")
    atom = items(read_feed("feed.atom", stream=io.BytesIO(ATOM)))
    assert (atom[0].id, atom[0].published, atom[0].url, atom[0].source) == (
        "urn:1", "2026-01-02T09:00:00Z", "https://example.com/a", "Atom Wire")


@pytest.mark.parametrize("data, message", [
    (b"<rss><channel><item>", "is not well-formed XML"),
    (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]><rss><channel><item>'
     b"<title>&b;</title></item></channel></rss>", "forbidden XML constructs"),
    (b"<html><body>hello</body></html>", "neither RSS nor Atom"),
])
def test_bad_xml_is_one_clear_error(data, message):
    with pytest.raises(FeedError, match=message):
        list(read_feed("feed.xml", stream=io.BytesIO(data)))


def test_folders_expand_to_sorted_feed_files_and_missing_paths_fail(tmp_path):
    (tmp_path / "b.jsonl").write_text("{}\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.rss").write_bytes(RSS)
    (tmp_path / "notes.txt").write_text("not a feed")
    assert feed_files([tmp_path]) == [str(tmp_path / "b.jsonl"), str(tmp_path / "sub" / "a.rss")]
    with pytest.raises(FeedError, match="does not exist"):
        feed_files([tmp_path / "missing.jsonl"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(FeedError, match="holds no feed files"):
        feed_files([tmp_path / "empty"])


def test_format_is_sniffed_on_standard_input():
    assert [i.title for i in items(read_feed("-", stream=io.BytesIO(RSS)))][0] == "Acme & Co shares fall"
    assert items(read_feed("-", stream=io.BytesIO(b"title,body\nHello,World\n")))[0].body == "World"
    array = json.dumps([{"title": "one"}, {"title": "two"}]).encode()
    assert [i.title for i in items(read_feed("-", stream=io.BytesIO(array)))] == ["one", "two"]


@pytest.mark.parametrize("value, expected", [
    ("2026-01-31T09:30:00Z", "2026-01-31T09:30:00Z"),
    ("2026-01-31 09:30", "2026-01-31T09:30:00Z"),
    ("2026-01-31T10:30:00+01:00", "2026-01-31T09:30:00Z"),
    ("Sat, 31 Jan 2026 09:30:00 GMT", "2026-01-31T09:30:00Z"),
    (1769851800, "2026-01-31T09:30:00Z"),
])
def test_published_times_normalise_to_utc(value, expected):
    assert parse_time(value) == expected


def test_unknown_field_names_are_rejected():
    with pytest.raises(ValueError, match="unknown feed field"):
        FieldMap.parse(["headline=title"])
    with pytest.raises(ValueError, match="FIELD=KEY"):
        FieldMap.parse(["title"])
