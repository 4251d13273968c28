"""News feeds: read JSONL, CSV and RSS/Atom files, folders of them, or standard input.

A reader yields :class:`Record`\\ s in file order: a parsed :class:`FeedItem` or a
:class:`Malformed` entry saying why a line or entry was skipped. Each record carries its
``position`` (line number, or entry number for XML) and the byte ``offset`` just after it, which is
what the store saves as the feed's cursor so an interrupted run resumes where it stopped.

Items without an id get a stable one: the sha256 of their normalised source, title, published
time and body, so the same story read twice (a re-fetched RSS file, a re-run) is one item.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import re
import sys
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import IO, Any

FORMATS = ("auto", "jsonl", "json", "csv", "xml")
STDIN = "-"
_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv",
             ".xml": "xml", ".rss": "xml", ".atom": "xml"}
# Where each field is looked for when the user names none: the first key present wins.
DEFAULT_FIELDS: dict[str, tuple[str, ...]] = {
    "id": ("id", "guid", "uuid"),
    "published": ("published", "published_at", "pubDate", "date", "time", "timestamp", "updated"),
    "source": ("source", "publisher", "feed"),
    "title": ("title", "headline", "text"),
    "body": ("body", "content", "summary", "description"),
    "url": ("url", "link"),
}
_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")
_RAW_LIMIT = 500  # characters of a malformed line kept as evidence; enough to see what is wrong


class FeedError(ValueError):
    """A feed cannot be read at all (missing file, unknown format, XML that does not parse)."""


@dataclass(frozen=True)
class FieldMap:
    """Which keys/columns of a record hold each field.

    Attributes:
        names: Field -> key, for the fields the user renamed (``{"title": "headline"}``); the rest
            are looked up under :data:`DEFAULT_FIELDS`.
    """

    names: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.names) - set(DEFAULT_FIELDS)
        if unknown:
            raise ValueError(f"unknown feed field(s) {sorted(unknown)}; known: {', '.join(DEFAULT_FIELDS)}")

    @classmethod
    def parse(cls, specs: Sequence[str]) -> FieldMap:
        """Build from ``field=key`` strings (the CLI's ``--field title=headline``)."""
        names = {}
        for spec in specs:
            name, sep, key = spec.partition("=")
            if not sep or not name.strip() or not key.strip():
                raise ValueError(f"--field takes FIELD=KEY (e.g. title=headline), got {spec!r}")
            names[name.strip()] = key.strip()
        return cls(names)

    def get(self, record: dict[str, Any], name: str) -> Any:
        keys = (self.names[name],) if name in self.names else DEFAULT_FIELDS[name]
        for key in keys:
            value = record.get(key)
            if value not in (None, ""):
                return value
        return None


@dataclass(frozen=True)
class FeedItem:
    """One news item, normalised.

    Attributes:
        id: The feed's id, or ``sha256:<hex>`` of the normalised content when it has none.
        feed: The feed it came from (resolved path, or ``-`` for standard input).
        position: Line number (JSONL/CSV, header is line 1) or entry number (XML), from 1.
        published: ISO 8601 UTC (``2026-01-31T09:30:00Z``), or None when the feed gave no time.
        source: Publisher or feed name (may be empty).
        title: Headline.
        body: Body text, HTML stripped (may be empty).
        url: Link to the story (may be empty).
    """

    id: str
    feed: str
    position: int
    published: str | None
    source: str
    title: str
    body: str = ""
    url: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeedItem:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Malformed:
    """A line or entry that was skipped, and why."""

    feed: str
    position: int
    reason: str
    raw: str = ""


@dataclass(frozen=True)
class Cursor:
    """How far a feed has been read: byte offset and line number (for XML both count entries)."""

    offset: int = 0
    position: int = 0


@dataclass(frozen=True)
class Record:
    """What a reader yields: an item or a malformed entry, and the byte offset just after it."""

    entry: FeedItem | Malformed
    offset: int

    @property
    def cursor(self) -> Cursor:
        """The cursor to save once this record is stored: resume right after it."""
        return Cursor(self.offset, self.entry.position)


def stable_id(source: str, title: str, published: str | None, body: str) -> str:
    """``sha256:<32 hex>`` of the normalised (NFKC, case-folded, spaces collapsed) content."""
    parts = [_normalise(source), _normalise(title), published or "", _normalise(body)]
    return "sha256:" + hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]


def parse_time(value: Any) -> str:
    """ISO 8601, RFC 822 (RSS) or epoch seconds -> ``YYYY-MM-DDTHH:MM:SSZ`` in UTC.

    Times without a zone are taken as UTC. Raises ValueError when the value is none of these.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        moment = datetime.fromtimestamp(float(value), UTC)
    else:
        text = str(value).strip()
        moment = None
        if re.fullmatch(r"\d{9,11}(\.\d+)?", text):
            moment = datetime.fromtimestamp(float(text), UTC)
        else:
            try:
                moment = datetime.fromisoformat(text.replace(" ", "T", 1) if re.match(r"\d{4}-\d\d-\d\d \d", text) else text)
            except ValueError:
                try:
                    moment = parsedate_to_datetime(text)
                except (TypeError, ValueError, IndexError):
                    moment = None
        if moment is None:
            raise ValueError(f"unreadable published time {text[:60]!r}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_item(record: dict[str, Any], fields: FieldMap, feed: str, position: int) -> FeedItem | Malformed:
    """Turn one raw record (a JSON object, a CSV row, an XML entry) into an item, or say why not."""
    title = _clean(fields.get(record, "title"))
    body = _clean(fields.get(record, "body"))
    if not title and not body:
        return Malformed(feed, position, "no title or body", _raw(record))
    published_raw = fields.get(record, "published")
    try:
        published = None if published_raw is None else parse_time(published_raw)
    except ValueError as exc:
        return Malformed(feed, position, str(exc), _raw(record))
    source = _clean(fields.get(record, "source"))
    given = fields.get(record, "id")
    item_id = str(given).strip() if given not in (None, "") else stable_id(source, title, published, body)
    return FeedItem(item_id, feed, position, published, source, title or _first_sentence(body), body,
                    _clean(fields.get(record, "url")))


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
                 stream: IO[bytes] | None = None) -> None:
        self.name = feed
        self.fields = fields or FieldMap()
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
        return _records(self.handle, self.name, self.format, self.fields, start or Cursor())


def read_feed(feed: str, *, fields: FieldMap | None = None, fmt: str = "auto", start: Cursor | None = None,
              stream: IO[bytes] | None = None) -> Iterator[Record]:
    """Records of one feed (see :class:`Feed`); the file is closed when the iterator ends."""
    with Feed(feed, fmt, fields=fields, stream=stream) as opened:
        yield from opened.records(start)


def _records(handle: IO[bytes], feed: str, kind: str, fields: FieldMap, start: Cursor) -> Iterator[Record]:
    if kind == "json":
        yield from _read_json_array(handle.read(), feed, fields, start.offset)
    elif kind == "xml":
        yield from read_xml(handle.read(), feed, fields, start.offset)
    elif kind == "csv":
        yield from _read_csv(handle, feed, fields, start)
    else:
        yield from _read_jsonl(handle, feed, fields, start)


def _read_jsonl(handle: IO[bytes], feed: str, fields: FieldMap, start: Cursor) -> Iterator[Record]:
    offset, line = _seek(handle, start.offset), start.position
    for raw in handle:
        offset += len(raw)
        line += 1
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
        if not isinstance(record, dict):
            yield Record(Malformed(feed, line, f"expected a JSON object, got {type(record).__name__}", _raw(raw)), offset)
            continue
        yield Record(make_item(record, fields, feed, line), offset)


def _read_json_array(data: bytes, feed: str, fields: FieldMap, start: int) -> Iterator[Record]:
    """A ``.json`` file holding one array of objects; positions count its elements."""
    try:
        records = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FeedError(f"{feed} is neither JSON Lines nor a JSON array ({exc})".splitlines()[0]) from exc
    if not isinstance(records, list):
        raise FeedError(f"{feed}: a JSON feed must be an array of objects or JSON Lines")
    for number, record in enumerate(records, start=1):
        if number <= start:
            continue
        if not isinstance(record, dict):
            yield Record(Malformed(feed, number, f"expected a JSON object, got {type(record).__name__}", _raw(json.dumps(record))), number)
            continue
        yield Record(make_item(record, fields, feed, number), number)


def _read_csv(handle: IO[bytes], feed: str, fields: FieldMap, start: Cursor) -> Iterator[Record]:
    bom = 3 if handle.peek(3)[:3] == b"\xef\xbb\xbf" else 0
    text = io.TextIOWrapper(handle, encoding="utf-8-sig", newline="", errors="strict")
    counter = _CountingLines(text, bom)
    try:
        reader = csv.reader(counter)
        header = next(reader, None)
        if header is None:
            return
        header = [h.strip() for h in header]
        # Quoted fields may span lines, so the rows before the cursor are read again (not parsed
        # into items): cheap next to scoring, and line numbers stay right.
        counter.skip_to(start.offset)
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                yield Record(Malformed(feed, counter.line, f"expected {len(header)} columns, got {len(row)}",
                                      _raw(",".join(row))), counter.offset)
                continue
            yield Record(make_item(dict(zip(header, row)), fields, feed, counter.line), counter.offset)
    except UnicodeDecodeError as exc:
        raise FeedError(f"{feed} is not UTF-8 text near line {counter.line + 1}") from exc
    except csv.Error as exc:
        raise FeedError(f"{feed}: broken CSV near line {counter.line}: {exc}") from exc
    finally:
        text.detach()


class _CountingLines:
    """Lines of a text stream, counting the bytes (UTF-8) and lines handed to ``csv.reader``."""

    def __init__(self, text: io.TextIOWrapper, bom: int) -> None:
        self.text = text
        self.offset = bom  # utf-8-sig hides the byte-order mark from the text, not from the file
        self.line = 0

    def __iter__(self) -> _CountingLines:
        return self

    def __next__(self) -> str:
        line = self.text.readline()
        if not line:
            raise StopIteration
        self.offset += len(line.encode("utf-8"))
        self.line += 1
        return line

    def skip_to(self, target: int) -> None:
        while self.offset < target:
            next(self)


def read_xml(data: bytes, feed: str, fields: FieldMap, start: int = 0) -> Iterator[Record]:
    """Items of an RSS 2.0, RSS 1.0 (RDF) or Atom document; ``start`` entries are skipped.

    Parsed with defusedxml: a feed is untrusted input, and entity expansion or external
    entities must not reach the parser.
    """
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring
    from xml.etree.ElementTree import ParseError

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
        yield Record(make_item(record, fields, feed, number), number)


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


def _clean(value: Any) -> str:
    """Plain text: HTML tags dropped, entities decoded, whitespace collapsed."""
    if value is None:
        return ""
    text = str(value)
    if "<" in text:
        text = _TAG.sub(" ", text)
    if "&" in text:
        text = html.unescape(text)
    return _SPACE.sub(" ", text).strip()


def _normalise(text: str) -> str:
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def _first_sentence(body: str) -> str:
    """A headline for items that only have a body: its first sentence, at most 200 characters."""
    match = re.match(r"(.+?[.!?])(\s|$)", body)
    return (match.group(1) if match else body)[:200]


def _raw(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    elif isinstance(value, dict):
        value = json.dumps(value, ensure_ascii=False, default=str)
    return str(value).strip()[:_RAW_LIMIT]


def _seek(handle: IO[bytes], start: int) -> int:
    if start > 0:
        handle.seek(start)
    return max(start, 0)
