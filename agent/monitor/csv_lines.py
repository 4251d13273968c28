"""The CSV feed reader: rows of a CSV file as records, one bad row never stopping the feed.

The file is read as bytes, one physical line at a time, and each line is decoded on its own, so
a byte that is not UTF-8 spoils only the row it is in, and is reported at that row's line (a
text stream decodes ahead in 8 KiB pieces and fails lines before the bad one). Lines end at
``\\n``, ``\\r\\n`` or a bare ``\\r``, as in a file opened with ``newline=""``. A line over the
record cap is skipped without being held in memory; a row spanning lines is capped as a whole.
"""

from __future__ import annotations

import csv
import re
from collections import deque
from collections.abc import Iterator
from typing import IO

from agent.monitor.items import (
    Cursor,
    FeedError,
    FeedLimits,
    FieldMap,
    OVERSIZE_EVIDENCE,
    Malformed,
    Record,
    _raw,
    make_item,
    oversize_reason,
    read_line,
)

_BOM = b"\xef\xbb\xbf"
_BARE_CR = re.compile(rb"(?<=\r)(?!\n)")  # split after a \r that does not start a \r\n


def read_csv(handle: IO[bytes], feed: str, fields: FieldMap, start: Cursor, limits: FeedLimits) -> Iterator[Record]:
    """Records of a CSV feed whose first row is the header, resuming after ``start``.

    Raises:
        FeedError: The header row cannot be read (not UTF-8, over the cap, broken CSV).
    """
    # The csv module's own cap on a field (128 KiB by default) would stop a row within our cap.
    if csv.field_size_limit() < limits.max_record_bytes:
        csv.field_size_limit(limits.max_record_bytes)
    lines = _Lines(handle, limits.max_record_bytes)
    reader = csv.reader(lines)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise FeedError(f"{feed}: broken CSV header (line {lines.line}): {exc}") from exc
    if header is None:
        return
    if lines.problem:
        raise FeedError(f"{feed}: the header (line {lines.line}) is {lines.problem}")
    header = [h.strip() for h in header]
    # Quoted fields may span lines, so the rows before the cursor are read again (not parsed
    # into items): cheap next to scoring, and line numbers stay right.
    lines.skip_to(start.offset)
    while True:
        lines.new_record()
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # the reader starts afresh at the next line
            yield Record(Malformed(feed, lines.line, f"broken CSV ({exc})", _raw(lines.evidence)), lines.offset)
            continue
        if lines.problem:
            yield Record(Malformed(feed, lines.line, lines.problem, _raw(lines.evidence)), lines.offset)
            continue
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            yield Record(Malformed(feed, lines.line, f"expected {len(header)} columns, got {len(row)}",
                                  _raw(",".join(row))), lines.offset)
            continue
        yield Record(make_item(dict(zip(header, row)), fields, feed, lines.line, limits), lines.offset)


class _Lines:
    """Decoded physical lines for ``csv.reader``, counting bytes and lines, and noting the first
    problem (bad bytes, over the cap) of the record being read."""

    def __init__(self, handle: IO[bytes], limit: int) -> None:
        self.handle = handle
        self.limit = limit
        self.offset = 0
        self.line = 0
        self.problem = ""
        self.evidence = ""
        self._record_bytes = 0
        self._pending: deque[bytes] = deque()
        self._first = True
        self._skipped = 0

    def __iter__(self) -> _Lines:
        return self

    def new_record(self) -> None:
        self.problem, self.evidence, self._record_bytes = "", "", 0

    def __next__(self) -> str:
        raw = self._next_bytes()
        self.line += 1
        self.offset += len(raw) if raw is not None else self._skipped
        if raw is None:
            self._note(oversize_reason(self._skipped, self.limit), OVERSIZE_EVIDENCE)
            return "\n"  # ends the row (or adds a line break to a quoted field): the row is rejected
        self._record_bytes += len(raw)
        if self._record_bytes > self.limit:
            self._note(oversize_reason(self._record_bytes, self.limit), raw.decode("utf-8", "replace"))
            return "\n"
        if self._first:
            self._first = False
            raw = raw[len(_BOM):] if raw.startswith(_BOM) else raw
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("utf-8", "replace")
            self._note("not UTF-8", text)
        if not self.evidence:
            self.evidence = text
        return text

    def skip_to(self, target: int) -> None:
        while self.offset < target:
            try:
                next(self)
            except StopIteration:
                return

    def _note(self, problem: str, evidence: str) -> None:
        if not self.problem:
            self.problem, self.evidence = problem, evidence

    def _next_bytes(self) -> bytes | None:
        """The next physical line, or None for a line over the cap (its size in ``_skipped``)."""
        if not self._pending:
            raw, size = read_line(self.handle, self.limit)
            if raw is None:
                self._skipped = size
                return None
            if not size:
                raise StopIteration
            self._pending.extend(piece for piece in _BARE_CR.split(raw) if piece)
        return self._pending.popleft()
