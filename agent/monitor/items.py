"""Feed records: what one line or entry of a feed becomes (a :class:`FeedItem` or a
:class:`Malformed` line with its reason), the limits it must keep, and how its time is read.

The readers of each format (:mod:`agent.monitor.feeds`, :mod:`agent.monitor.csv_lines`) build
records with :func:`make_item`; the store and the alert rules read them.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import IO, Any

STDIN = "-"
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


_SKIP_CHUNK = 1 << 20  # bytes read at a time while skipping the rest of an oversized line


# What decoding or converting one hostile record can raise; each means "this record is bad".
_BAD_RECORD = (ValueError, OverflowError, OSError, RecursionError, TypeError, IndexError)


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
class FeedLimits:
    """What a feed record may hold; a record outside these limits is rejected with the reason.

    Attributes:
        max_title_chars: Longest headline (after HTML is stripped).
        max_body_chars: Longest body (after HTML is stripped).
        max_record_bytes: Longest JSONL line or CSV row in bytes (with its newline). A longer
            line is skipped without being decoded or held in memory. JSON arrays and XML are
            parsed whole, so only the field caps apply to them.
        earliest: Earliest published date or time accepted (ISO 8601, UTC).
        max_ahead_hours: How far after now a published time may lie (clock skew, time zones).
    """

    max_title_chars: int = 1_000
    max_body_chars: int = 100_000
    max_record_bytes: int = 1 << 20
    earliest: str = "1900-01-01"
    max_ahead_hours: float = 24.0

    def __post_init__(self) -> None:
        for name in ("max_title_chars", "max_body_chars", "max_record_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.max_ahead_hours <= 24 * 365 * 100:
            raise ValueError(f"max_ahead_hours must be between 0 and 876000, got {self.max_ahead_hours}")
        try:
            object.__setattr__(self, "_earliest", parse_time(self.earliest))
        except ValueError:
            raise ValueError(f"earliest must be a date such as 1900-01-01, got {self.earliest!r}") from None

    def check_time(self, published: str) -> str | None:
        """Why ``published`` (a :func:`parse_time` string) lies outside the window, or None."""
        earliest: str = self._earliest  # type: ignore[attr-defined]
        if published < earliest:
            return f"published time before {self.earliest} ({published!r})"
        if published > format_time(datetime.now(UTC) + timedelta(hours=self.max_ahead_hours)):
            return f"published time more than {self.max_ahead_hours:g}h ahead ({published!r})"
        return None


@dataclass(frozen=True)
class FeedItem:
    """One news item, normalised.

    Attributes:
        id: The feed's id, or ``sha256:<hex>`` of the normalised content when it has none or
            comes from standard input.
        feed: The feed it came from (resolved path, or ``-`` for standard input).
        position: Line number (JSONL/CSV, header is line 1) or entry number (XML), from 1.
        published: ISO 8601 UTC (``2026-01-31T09:30:00Z``), or None when the feed gave no time.
        source: Publisher or feed name (may be empty).
        title: Headline.
        body: Body text, HTML stripped (may be empty).
        url: Link to the story (may be empty).
        content_id: ``id`` is the content hash (the feed gave none).
    """

    id: str
    feed: str
    position: int
    published: str | None
    source: str
    title: str
    body: str = ""
    url: str = ""
    content_id: bool = False

    @property
    def key(self) -> str:
        """The id the item is stored under: ``FEED#ID`` for an id the feed gave (ids are the feed's
        own), the content hash as it is for the rest (the same story in two feeds is one item)."""
        return self.id if self.content_id else f"{self.feed}#{self.id}"

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

    Times without a zone are taken as UTC. The year is always four digits, so the strings sort as
    the times do. Raises ValueError when the value is none of these, or names a time that does not
    exist in UTC (``Infinity``, ``1e20``, year 1 an hour east of Greenwich).
    """
    text = str(value).strip()[:60] if not isinstance(value, float) else repr(value)
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            moment: datetime | None = datetime.fromtimestamp(float(value), UTC)
        elif re.fullmatch(r"\d{9,11}(\.\d+)?", text):
            moment = datetime.fromtimestamp(float(text), UTC)
        else:
            moment = _parse_text_time(str(value).strip())
        if moment is not None:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            moment = moment.astimezone(UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise ValueError(f"published time out of range ({text!r}: {exc})") from None
    if moment is None:
        raise ValueError(f"unreadable published time {text!r}")
    return format_time(moment)


def format_time(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` with a four-digit year (``strftime("%Y")`` leaves years before
    1000 unpadded on Linux, and those strings would sort after 2026)."""
    moment = moment.astimezone(UTC) if moment.tzinfo is not None else moment
    return (f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
            f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}Z")


def _parse_text_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace(" ", "T", 1) if re.match(r"\d{4}-\d\d-\d\d \d", text) else text)
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None


def make_item(record: dict[str, Any], fields: FieldMap, feed: str, position: int,
              limits: FeedLimits | None = None) -> FeedItem | Malformed:
    """Turn one raw record (a JSON object, a CSV row, an XML entry) into an item, or say why not."""
    limits = limits or DEFAULT_LIMITS
    try:
        return _make_item(record, fields, feed, position, limits)
    except _BAD_RECORD as exc:  # hostile values (a number too big for str(), a nested monster): a bad record
        return Malformed(feed, position, f"unreadable record ({type(exc).__name__})", _raw(record))


def _make_item(record: dict[str, Any], fields: FieldMap, feed: str, position: int, limits: FeedLimits) -> FeedItem | Malformed:
    title = _clean(fields.get(record, "title"))
    body = _clean(fields.get(record, "body"))
    if not title and not body:
        return Malformed(feed, position, "no title or body", _raw(record))
    for name, text, cap in (("title", title, limits.max_title_chars), ("body", body, limits.max_body_chars)):
        if len(text) > cap:
            return Malformed(feed, position, f"{name} over {cap:,} characters ({len(text):,}; --max-{name}-chars)",
                             _raw(record))
    published_raw = fields.get(record, "published")
    try:
        published = None if published_raw is None else parse_time(published_raw)
    except ValueError as exc:
        return Malformed(feed, position, str(exc), _raw(record))
    outside = limits.check_time(published) if published is not None else None
    if outside:
        return Malformed(feed, position, outside, _raw(record))
    source = _clean(fields.get(record, "source"))
    given = fields.get(record, "id")
    url = _clean(fields.get(record, "url"))
    invalid = _invalid_unicode(title=title, body=body, source=source, url=url, id=str(given or ""))
    if invalid:
        return Malformed(feed, position, invalid, _raw(record))
    # Standard input has no identity from one run to the next (every run's line 1 would be "-#1"),
    # so its items are keyed by their content like items without an id.
    if given not in (None, "") and feed != STDIN:
        item_id, content_id = str(given).strip(), False
    else:
        item_id, content_id = stable_id(source, title, published, body), True
    return FeedItem(item_id, feed, position, published, source, title or _first_sentence(body), body, url, content_id)


OVERSIZE_EVIDENCE = "(not kept: over the size cap)"


def read_line(handle: IO[bytes], limit: int) -> tuple[bytes | None, int]:
    """The next line (with its newline) and its size in bytes; (b"", 0) at the end.

    A line over ``limit`` bytes comes back as (None, size): the rest of it is read and dropped in
    1 MiB pieces, so a hostile line costs no more memory than the cap.
    """
    raw = handle.readline(limit + 1)
    size = len(raw)
    if size <= limit:
        return raw, size
    while not raw.endswith(b"\n"):
        raw = handle.readline(_SKIP_CHUNK)
        if not raw:
            break
        size += len(raw)
    return None, size


def oversize_reason(size: int, cap: int) -> str:
    """The reject reason for a line or row of ``size`` bytes over the ``cap``."""
    return f"record over {cap:,} bytes ({size:,}; --max-record-bytes)"


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


def _invalid_unicode(**texts: str) -> str | None:
    """Why one of ``texts`` cannot be stored or tokenized (a lone surrogate such as ``\\udc80``, which
    JSON escapes can spell but UTF-8 cannot encode), or None."""
    for name, text in texts.items():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            return f"{name} is not valid Unicode (lone surrogate {text[exc.start]!r} at character {exc.start + 1})"
    return None


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
    # Lone surrogates are escaped: the evidence must still encode to UTF-8 to be stored.
    return str(value).strip()[:_RAW_LIMIT].encode("utf-8", "backslashreplace").decode("utf-8")


DEFAULT_LIMITS = FeedLimits()
