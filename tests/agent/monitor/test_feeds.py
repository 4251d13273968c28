import io
import json

import pytest

from agent.monitor.feeds import (
    FeedError,
    FieldMap,
    FeedItem,
    Malformed,
    feed_files,
    parse_time,
    read_feed,
    stable_id,
)

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
    records = list(read_feed("-", stream=io.BytesIO(data)))
    good = items(records)
    assert [i.id for i in good] == ["a", stable_id("", "no id", "2026-01-05T14:45:00Z", "Body.")]
    assert good[1].published == "2026-01-05T14:45:00Z"
    bad = [(r.entry.position, r.entry.reason) for r in records if isinstance(r.entry, Malformed)]
    assert bad == [(3, "invalid JSON (Expecting value, column 1)"), (5, "unreadable published time 'yesterday'"),
                   (6, "expected a JSON object, got list"), (7, "no title or body")]


def test_stable_id_ignores_case_and_spacing_but_not_content():
    a = stable_id("Wire", "Acme  Falls", "2026-01-01T00:00:00Z", "Body")
    assert a == stable_id("wire", "acme falls ", "2026-01-01T00:00:00Z", "body")
    assert a != stable_id("Wire", "Acme Rises", "2026-01-01T00:00:00Z", "Body")
    assert a.startswith("sha256:")


def test_resuming_from_a_cursor_reads_only_what_follows():
    lines = [json.dumps({"id": str(n), "title": f"t{n}"}) for n in range(5)]
    data = ("\n".join(lines) + "\n").encode()
    records = list(read_feed("-", stream=io.BytesIO(data)))
    rest = list(read_feed("-", stream=io.BytesIO(data), start=records[1].cursor))
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
