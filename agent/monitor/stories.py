"""Stories: near-duplicate items grouped so that a story syndicated twenty times counts once.

Wire copies, ``UPDATE 1-`` / ``REFILE-`` prefixes, re-punctuated or lightly edited headlines and
the same body under another source are copies of one story. Each item gets two MinHash signatures
(``datasketch``, 64 permutations) over normalised words: of its headline (single words and word
pairs, since headlines are short) and of its body (word triples), the body only when it has at
least ``min_body_words`` words: short boilerplate bodies ("The shares fell in early trading.")
are shared by unrelated stories. An item is a copy of a stored item when their headlines'
estimated Jaccard similarity reaches ``title_threshold`` or their bodies' reaches
``body_threshold`` (matching headlines are not enough when both bodies can be compared and share
under ``body_veto`` of their word triples: a templated headline such as "X to report results next
week" over another story), the two do not name different companies (both name some, none in common:
"Contoso to hold annual meeting" is not a copy of "Northwind to hold annual meeting"), and that
item's story began at most ``span`` before (or after) it; it joins the most similar item's
story, else it starts its own, whose id is its own item key.

Signatures are stored as bytes (the uint32 hash values; never pickle) in the ``minhashes``
table, so the LSH index is rebuilt from the database whenever a store first writes and always
matches what was committed.
"""

from __future__ import annotations

import re
import sqlite3
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

NUM_PERM = 64  # 64 hash values: Jaccard estimates within about ±0.06, 256 bytes a signature
SEED = 20261206
SCHEME = "affine32"  # datasketch's default; stored signatures are read back with it
COUNTS = ("stories", "items")
# Leading wire markers: "UPDATE 1-", "REFILE-", "CORRECTED-", "RPT-", "BRIEF-", "EXCLUSIVE-", "$NWB:".
_PREFIX = re.compile(
    r"^\s*(?:(?:update\s*\d*|refile|corrected|correction|rpt|repeat|brief|exclusive|urgent|flash|wrapup\s*\d*"
    r"|\$[a-z][a-z.]{0,9})\s*[-:–—|]+\s*)+", re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class StoryConfig:
    """When two items are one story.

    Attributes:
        title_threshold: Headline Jaccard similarity (words and word pairs) that makes a copy.
        body_threshold: Body Jaccard similarity (word triples) that makes a copy.
        body_veto: Bodies (both long enough) less similar than this keep matching headlines apart.
        min_body_words: Bodies shorter than this are not compared (boilerplate).
        span: Seconds a story lasts: a copy joins only a story that began at most this long
            before or after it. Wire copies and their updates come within hours; the same
            headline half a day later (or next quarter) is counted as news again.
    """

    title_threshold: float = 0.5
    body_threshold: float = 0.6
    body_veto: float = 0.2
    min_body_words: int = 20
    span: int = 12 * 3600

    def __post_init__(self) -> None:
        for name in ("title_threshold", "body_threshold"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)}")
        if not 0 <= self.body_veto <= 1:
            raise ValueError(f"body_veto must be in [0, 1], got {self.body_veto}")
        if self.min_body_words < 1 or self.span < 1:
            raise ValueError(f"min_body_words and span must be >= 1, got {self.min_body_words} and {self.span}")


def words(text: str) -> list[str]:
    """Lower-case words of ``text`` without wire prefixes, accents or punctuation."""
    text = unicodedata.normalize("NFKD", _PREFIX.sub("", text or "").lower())
    return _WORD.findall("".join(ch for ch in text if not unicodedata.combining(ch)))  # other symbols split words


def title_shingles(title: str) -> set[str]:
    w = words(title)
    return set(w) | {f"{a} {b}" for a, b in zip(w, w[1:])}


def body_shingles(body: str, min_words: int) -> set[str]:
    w = words(body)
    if len(w) < min_words:
        return set()
    return {" ".join(w[k : k + 3]) for k in range(len(w) - 2)}


@dataclass(frozen=True)
class Signature:
    """An item's MinHash signatures (None: nothing to compare)."""

    title: Any
    body: Any

    @classmethod
    def of(cls, title: str, body: str, config: StoryConfig) -> Signature:
        from datasketch import LeanMinHash, MinHash

        def sign(shingles: set[str]) -> Any:
            if not shingles:
                return None
            m = MinHash(num_perm=NUM_PERM, seed=SEED, scheme=SCHEME)
            m.update_batch([s.encode() for s in sorted(shingles)])
            return LeanMinHash(m)

        return cls(sign(title_shingles(title)), sign(body_shingles(body, config.min_body_words)))

    def to_bytes(self) -> tuple[bytes | None, bytes | None]:
        return tuple(None if m is None else np.asarray(m.hashvalues, dtype=np.uint32).tobytes()  # type: ignore[return-value]
                     for m in (self.title, self.body))

    @classmethod
    def from_bytes(cls, title: bytes | None, body: bytes | None) -> Signature:
        from datasketch import LeanMinHash

        def read(blob: bytes | None) -> Any:
            if blob is None:
                return None
            return LeanMinHash(seed=SEED, hashvalues=np.frombuffer(blob, dtype=np.uint32), scheme=SCHEME)

        return cls(read(title), read(body))


def epoch(iso: str) -> int:
    """Seconds since 1970 of a stored time (``YYYY-MM-DDTHH:MM:SSZ``)."""
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())


class StoryIndex:
    """Stored items' signatures in two LSH indexes (headlines, bodies), and each story's start."""

    def __init__(self, config: StoryConfig | None = None) -> None:
        from datasketch import MinHashLSH

        self.config = config or StoryConfig()
        self._title = MinHashLSH(threshold=self.config.title_threshold, num_perm=NUM_PERM)
        self._body = MinHashLSH(threshold=self.config.body_threshold, num_perm=NUM_PERM)
        self._signatures: dict[str, Signature] = {}
        self._story_of: dict[str, str] = {}
        self._companies: dict[str, frozenset[str]] = {}
        self._last_row = 0  # the last minhashes row read from the database
        self.started: dict[str, int] = {}  # story -> epoch seconds of its earliest copy

    @classmethod
    def load(cls, db: sqlite3.Connection, config: StoryConfig | None = None) -> StoryIndex:
        """The index of everything stored in ``db`` (rebuilt from the ``minhashes`` rows)."""
        index = cls(config)
        index.refresh(db)
        return index

    def refresh(self, db: sqlite3.Connection) -> None:
        """Add what other processes stored since this index last read ``db`` (call it inside the
        write transaction, whose lock keeps anything new from landing meanwhile)."""
        rows = db.execute("SELECT m.rowid, m.item_id, i.story, m.title, m.body FROM minhashes m "
                          "JOIN items i ON i.id = m.item_id WHERE m.rowid > ? ORDER BY m.rowid",
                          (self._last_row,)).fetchall()
        if not rows:
            return
        stories = sorted({r[2] for r in rows if r[2] is not None})
        for lo in range(0, len(stories), 500):
            chunk = stories[lo : lo + 500]
            for story, first in db.execute(f"SELECT id, first_time FROM stories WHERE id IN ({','.join('?' * len(chunk))})",
                                           chunk):
                self.started[story] = epoch(first)
        companies = companies_of(db, [r[1] for r in rows])
        for rowid, key, story, title, body in rows:
            if key not in self._signatures:
                self.add(key, story, Signature.from_bytes(title, body), companies.get(key, frozenset()))
            self._last_row = max(self._last_row, rowid)

    def add(self, key: str, story: str, signature: Signature, companies: frozenset[str] = frozenset()) -> None:
        self._signatures[key] = signature
        self._story_of[key] = story
        self._companies[key] = companies
        if signature.title is not None:
            self._title.insert(key, signature.title)
        if signature.body is not None:
            self._body.insert(key, signature.body)

    def match(self, signature: Signature, when: int, companies: frozenset[str] = frozenset()) -> tuple[str, float] | None:
        """The story ``signature`` is a copy of (with the similarity), or None."""
        best: tuple[float, str] | None = None  # (-similarity, story): the most similar, then the oldest id
        for field, lsh, threshold in (("title", self._title, self.config.title_threshold),
                                      ("body", self._body, self.config.body_threshold)):
            mine = getattr(signature, field)
            if mine is None:
                continue
            for key in lsh.query(mine):  # LSH proposes candidates; the estimate decides
                similarity = mine.jaccard(getattr(self._signatures[key], field))
                story = self._story_of[key]
                theirs = self._companies[key]
                if companies and theirs and not companies & theirs:
                    continue
                if similarity < threshold or abs(when - self.started.get(story, when)) > self.config.span:
                    continue
                if field == "title" and self._bodies_differ(signature, self._signatures[key]):
                    continue
                if best is None or (-similarity, story) < best:
                    best = (-similarity, story)
        return None if best is None else (best[1], -best[0])

    def _bodies_differ(self, mine: Signature, theirs: Signature) -> bool:
        if mine.body is None or theirs.body is None:
            return False
        return mine.body.jaccard(theirs.body) < self.config.body_veto

    def assign(self, db: sqlite3.Connection, key: str, title: str, body: str, event_time: str,
               companies: frozenset[str] = frozenset()) -> str:
        """Put the just-inserted item ``key`` (naming ``companies``) into its story, inside the
        caller's transaction; return the story's id."""
        signature = Signature.of(title, body, self.config)
        when = epoch(event_time)
        found = self.match(signature, when, companies)
        if found is None:
            story = key
            db.execute("INSERT INTO stories (id, size, first_time, title) VALUES (?, 1, ?, ?)", (story, event_time, title))
            self.started[story] = when
        else:
            story = found[0]
            db.execute("UPDATE stories SET size = size + 1, first_time = MIN(first_time, ?) WHERE id = ?",
                       (event_time, story))
            self.started[story] = min(self.started[story], when)
        db.execute("UPDATE items SET story = ? WHERE id = ?", (story, key))
        cur = db.execute("INSERT INTO minhashes (item_id, title, body) VALUES (?, ?, ?)", (key, *signature.to_bytes()))
        self._last_row = max(self._last_row, int(cur.lastrowid or 0))  # refresh() read all before it
        self.add(key, story, signature, companies)
        return story


def companies_of(db: sqlite3.Connection, item_ids: list[str] | None = None) -> dict[str, frozenset[str]]:
    """Item key -> the companies its stored entities name (of ``item_ids``, or of every item)."""
    found: dict[str, set[str]] = {}
    if item_ids is None:
        rows = db.execute("SELECT item_id, key FROM entities WHERE kind = 'company'").fetchall()
    else:
        rows = []
        for lo in range(0, len(item_ids), 500):  # SQLite caps bound parameters per statement
            chunk = item_ids[lo : lo + 500]
            rows += db.execute(f"SELECT item_id, key FROM entities WHERE kind = 'company' AND item_id IN "
                               f"({','.join('?' * len(chunk))})", chunk).fetchall()
    for item_id, name in rows:
        found.setdefault(item_id, set()).add(name)
    return {k: frozenset(v) for k, v in found.items()}


def stories_of(db: sqlite3.Connection, item_ids: list[str]) -> list[dict[str, Any]]:
    """The stories of ``item_ids`` (in their order, each once): id, first headline, its learned topic
    (None without one), copies, sources."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for item_id in item_ids:
        row = db.execute("SELECT COALESCE(story, id) FROM items WHERE id = ?", (item_id,)).fetchone()
        if row is None or row[0] in seen:
            continue
        story = row[0]
        seen.add(story)
        copies = db.execute("SELECT i.title, i.source, s.topic FROM items i LEFT JOIN scores s ON s.item_id = i.id "
                            "WHERE COALESCE(i.story, i.id) = ? ORDER BY i.event_time, i.id", (story,)).fetchall()
        out.append({"story": story, "title": copies[0][0] if copies else "", "topic": copies[0][2] if copies else None,
                    "copies": len(copies), "sources": sorted({c[1] for c in copies})})
    return out
