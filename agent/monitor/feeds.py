"""News feeds: read JSONL, CSV and RSS/Atom files, folders of them, or standard input.

A reader yields :class:`Record`\\ s in file order: a parsed :class:`FeedItem` or a
:class:`Malformed` entry saying why a line or entry was skipped. Each record carries its
``position`` (line number, or entry number for XML) and the byte ``offset`` just after it, which is
what the store saves as the feed's cursor so an interrupted run resumes where it stopped.

Items without an id get a stable one: the sha256 of their normalised source, title, published
time and body, so the same story read twice (a re-fetched RSS file, a re-run, another feed) is one
item. An id the feed gives belongs to that feed: the item's stored :attr:`FeedItem.key` is
``FEED#ID``, so two feeds' ``guid 1`` are two items and no feed can claim another's ids.
Standard input is no one feed from run to run, so its items always get the content id.

Feeds are untrusted input. A line or entry that cannot become an item (bad JSON or bytes, a time
that does not parse or lies outside :class:`FeedLimits`' window, a field over its size cap) is a
:class:`Malformed` record with the reason, and reading goes on; only a feed that cannot be read at
all (missing, XML that does not parse) raises :class:`FeedError`.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from agent.monitor.items import (  # noqa: F401  (the record types, as callers have always imported them from here)
    DEFAULT_FIELDS,
    DEFAULT_LIMITS,
    OVERSIZE_EVIDENCE,
    STDIN,
    Cursor,
    FeedError,
    FeedItem,
    FeedLimits,
    FieldMap,
    Malformed,
    Record,
    _clean,
    _raw,
    format_time,
    make_item,
    oversize_reason,
    parse_time,
    read_line,
    stable_id,
)

FORMATS = ("auto", "jsonl", "json", "csv", "xml")
_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv",
             ".xml": "xml", ".rss": "xml", ".atom": "xml"}




























def feed_files(paths: Sequence[str | Path]) -> list[str]:
    """Expand the user's feed arguments: files as given, folders to their feed files (sorted,
    recursively; ``.json`` files only when named), ``-``.

    Raises:
        FeedError: A path does not exist, or a folder holds no feed file.
    """
    out: list[str] = []
    for raw in paths:
        if str(raw) == STDIN:
            out.append(STDIN)
            continue
        path = Path(raw)
        if path.is_dir():
            # .json is left out of folders: beside feeds it is usually a watch-list or a config.
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in _SUFFIXES
                           and p.suffix.lower() != ".json")
            if not found:
                raise FeedError(f"{path} holds no feed files (.jsonl, .ndjson, .csv, .xml, .rss, .atom)")
            out.extend(str(p.resolve()) for p in found)
        elif path.is_file():
            out.append(str(path.resolve()))
        else:
            raise FeedError(f"feed {path} does not exist")
    if not out:
        raise FeedError("no feeds given")
    return out


def detect_format(feed: str, fmt: str = "auto", head: bytes = b"") -> str:
    """The reader for ``feed``: ``fmt`` when given, else by suffix, else by the first bytes."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if fmt != "auto":
        return "json" if fmt == "jsonl" and start == b"[" else fmt
    suffix = Path(feed).suffix.lower() if feed != STDIN else ""
    if suffix in _SUFFIXES:
        kind = _SUFFIXES[suffix]
        return "json" if kind == "jsonl" and start == b"[" else kind
    if start == b"[":
        return "json"
    if start == b"<":
        return "xml"
    if start == b"{":
        return "jsonl"
    if start:
        return "csv"
    raise FeedError(f"cannot tell the format of {feed}; pass --format jsonl, csv or xml")


class Feed:
    """One opened feed: its resolved format, ready to read records from a cursor.

    Use as a context manager (it holds the file open). ``stream`` replaces the file (tests,
    standard input).
    """

    def __init__(self, feed: str, fmt: str = "auto", *, fields: FieldMap | None = None,
                 stream: IO[bytes] | None = None, limits: FeedLimits | None = None) -> None:
        self.name = feed
        self.fields = fields or FieldMap()
        self.limits = limits or DEFAULT_LIMITS
        if stream is None and feed == STDIN:
            stream = sys.stdin.buffer
        self._owned = stream is None
        if stream is None:
            try:
                stream = open(feed, "rb")  # noqa: SIM115 - closed by close()
            except OSError as exc:
                raise FeedError(f"cannot open feed {feed}: {exc.strerror or exc}") from exc
        elif not hasattr(stream, "peek"):
            stream = io.BufferedReader(io.BytesIO(stream.read()))  # type: ignore[arg-type]
        self.handle: IO[bytes] = stream
        try:
            self.format = detect_format(feed, fmt, self.handle.peek(64)[:64])  # type: ignore[attr-defined]
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._owned:
            self.handle.close()

    def __enter__(self) -> Feed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def records(self, start: Cursor | None = None) -> Iterator[Record]:
        """Records in file order, resuming after the saved cursor ``start`` (None: from the top)."""
        return _records(self.handle, self.name, self.format, self.fields, start or Cursor(), self.limits)


def read_feed(feed: str, *, fields: FieldMap | None = None, fmt: str = "auto", start: Cursor | None = None,
              stream: IO[bytes] | None = None, limits: FeedLimits | None = None) -> Iterator[Record]:
    """Records of one feed (see :class:`Feed`); the file is closed when the iterator ends."""
    with Feed(feed, fmt, fields=fields, stream=stream, limits=limits) as opened:
        yield from opened.records(start)


def _records(handle: IO[bytes], feed: str, kind: str, fields: FieldMap, start: Cursor,
             limits: FeedLimits) -> Iterator[Record]:
    if kind == "json":
        yield from _read_json_array(handle.read(), feed, fields, start.offset, limits)
    elif kind == "xml":
        yield from read_xml(handle.read(), feed, fields, start.offset, limits)
    elif kind == "csv":
        from agent.monitor.csv_lines import read_csv

        yield from read_csv(handle, feed, fields, start, limits)
    else:
        yield from _read_jsonl(handle, feed, fields, start, limits)


def _read_jsonl(handle: IO[bytes], feed: str, fields: FieldMap, start: Cursor, limits: FeedLimits) -> Iterator[Record]:
    offset, line = _seek(handle, start.offset), start.position
    while True:
        raw, size = read_line(handle, limits.max_record_bytes)
        if not size:
            return
        offset += size
        line += 1
        if raw is None:
            yield Record(Malformed(feed, line, oversize_reason(size, limits.max_record_bytes), OVERSIZE_EVIDENCE), offset)
            continue
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.decode("utf-8-sig"))
        except UnicodeDecodeError:
            yield Record(Malformed(feed, line, "not UTF-8", _raw(raw)), offset)
            continue
        except json.JSONDecodeError as exc:
            yield Record(Malformed(feed, line, f"invalid JSON ({exc.msg}, column {exc.colno})", _raw(raw)), offset)
            continue
        except (ValueError, RecursionError) as exc:  # a number over Python's digit limit, nesting past the stack
            yield Record(Malformed(feed, line, f"invalid JSON ({type(exc).__name__})", _raw(raw)), offset)
            continue
        if not isinstance(record, dict):
            yield Record(Malformed(feed, line, f"expected a JSON object, got {type(record).__name__}", _raw(raw)), offset)
            continue
        yield Record(make_item(record, fields, feed, line, limits), offset)








def _read_json_array(data: bytes, feed: str, fields: FieldMap, start: int, limits: FeedLimits) -> Iterator[Record]:
    """A ``.json`` file holding one array of objects; positions count its elements."""
    try:
        records = json.loads(data.decode("utf-8-sig"))
    except (ValueError, RecursionError) as exc:
        raise FeedError(f"{feed} is neither JSON Lines nor a JSON array ({exc})".splitlines()[0]) from exc
    if not isinstance(records, list):
        raise FeedError(f"{feed}: a JSON feed must be an array of objects or JSON Lines")
    for number, record in enumerate(records, start=1):
        if number <= start:
            continue
        if not isinstance(record, dict):
            yield Record(Malformed(feed, number, f"expected a JSON object, got {type(record).__name__}", _raw(json.dumps(record))), number)
            continue
        yield Record(make_item(record, fields, feed, number, limits), number)


def read_xml(data: bytes, feed: str, fields: FieldMap, start: int = 0, limits: FeedLimits | None = None) -> Iterator[Record]:
    """Items of an RSS 2.0, RSS 1.0 (RDF) or Atom document; ``start`` entries are skipped.

    Parsed with defusedxml: a feed is untrusted input, and entity expansion or external
    entities must not reach the parser.
    """
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring
    from xml.etree.ElementTree import ParseError

    if not data.strip():
        raise FeedError(f"{feed} is empty: no RSS or Atom document in it")
    try:
        root = fromstring(data)
    except ParseError as exc:
        raise FeedError(f"{feed} is not well-formed XML ({exc})") from exc
    except DefusedXmlException as exc:
        raise FeedError(f"{feed} uses forbidden XML constructs ({type(exc).__name__}); refusing to parse it") from exc
    channel_title = _text(_find(root, "channel", "title")) or _text(_child(root, "title"))
    entries = [el for el in root.iter() if _local(el.tag) in ("item", "entry")]
    if not entries and _local(root.tag) not in ("rss", "feed", "RDF"):
        raise FeedError(f"{feed} is XML but neither RSS nor Atom (root element <{_local(root.tag)}>)")
    for number, entry in enumerate(entries, start=1):
        if number <= start:
            continue
        record = _xml_record(entry)
        record.setdefault("source", channel_title)
        yield Record(make_item(record, fields, feed, number, limits), number)


def _xml_record(entry: Any) -> dict[str, Any]:
    """Child elements as a flat dict (local names); Atom links and RSS sources read as text."""
    record: dict[str, Any] = {}
    for child in entry:
        name = _local(child.tag)
        if name == "link" and child.get("href"):
            if child.get("rel", "alternate") == "alternate":
                record.setdefault("link", child.get("href"))
            continue
        value = _text(child)
        if name == "content" and "content" in record:
            continue
        if value:
            record.setdefault(name, value)
    # Dublin Core date (RSS 1.0) and Atom's published/updated land in the time field.
    if "published" not in record:
        for name in ("pubDate", "date", "updated", "issued"):
            if name in record:
                record["published"] = record[name]
                break
    if "body" not in record:
        for name in ("content", "encoded", "summary", "description"):
            if name in record:
                record["body"] = record[name]
                break
    return record


def _local(tag: Any) -> str:
    return str(tag).rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _child(element: Any, name: str) -> Any:
    for child in element:
        if _local(child.tag) == name:
            return child
    return None


def _find(element: Any, *path: str) -> Any:
    for name in path:
        if element is None:
            return None
        element = _child(element, name)
    return element


def _text(element: Any) -> str:
    if element is None:
        return ""
    return "".join(element.itertext()).strip()










def _seek(handle: IO[bytes], start: int) -> int:
    if start > 0:
        handle.seek(start)
    return max(start, 0)


