"""The conversation store: sessions, turns and cases, in SQLite or PostgreSQL.

One code path (SQLAlchemy Core) serves both: a file path or ``sqlite:///…`` opens SQLite (WAL, so
the web UI's sessions can write while others read), ``postgresql+psycopg://…`` a server. Every
method takes its own connection from the engine's pool and writes in one transaction, so one store
is shared by all threads. The schema is created on first use; a file that exists but holds no
qagent store is refused with one clear error instead of being written into.

A customer's turn row holds the whole exchange (message, NLU result, route, reason, reply,
timings); a ``person`` row is a reply written on the session's case (``agent cases reply``).

Card numbers never reach here: the assistant masks them first (:mod:`agent.cards`).
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa

SCHEMA_VERSION = 1
STATUSES = ("open", "assigned", "resolved", "cancelled")
ROLES = ("customer", "assistant", "person")
_NEXT = {"open": {"assigned", "resolved", "cancelled"}, "assigned": {"resolved", "cancelled", "open"}}

metadata = sa.MetaData()
meta = sa.Table("qagent_store", metadata, sa.Column("key", sa.String(64), primary_key=True),
                sa.Column("value", sa.String(256), nullable=False))
sessions = sa.Table(
    "conversations", metadata,
    sa.Column("session_id", sa.String(200), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("card_warned", sa.Boolean, nullable=False, default=False),
)
turns = sa.Table(
    "turns", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("session_id", sa.String(200), sa.ForeignKey("conversations.session_id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("turn_index", sa.Integer, nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("nlu", sa.Text),
    sa.Column("route", sa.String(32)),
    sa.Column("reason", sa.Text),
    sa.Column("reply", sa.Text),
    sa.Column("timings", sa.Text),
    sa.Column("delivered", sa.Boolean, nullable=False, default=True),  # a person's reply the customer has seen
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("session_id", "turn_index"),
)
cases = sa.Table(
    "cases", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("session_id", sa.String(200), sa.ForeignKey("conversations.session_id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("flow", sa.String(64)),
    sa.Column("slots", sa.Text, nullable=False, default="{}"),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("handoff_reason", sa.Text),
    sa.Column("sentiment", sa.String(32)),
    sa.Column("summary", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)


class StoreError(RuntimeError):
    """The store cannot be opened or used (the message says what to do)."""


@dataclass(frozen=True)
class StoredTurn:
    session_id: str
    turn_index: int
    role: str
    text: str
    route: str | None = None
    reason: str | None = None
    reply: str | None = None
    nlu: dict[str, Any] | None = None
    timings: dict[str, float] | None = None
    created_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Case:
    id: int
    session_id: str
    status: str
    flow: str | None
    slots: dict[str, Any]
    handoff_reason: str | None
    sentiment: str | None
    summary: str | None
    created_at: str
    updated_at: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def default_store_path() -> Path:
    return Path(os.environ.get("QAGENT_HOME", Path.home() / ".qagent")).expanduser() / "assistant.db"


def store_url(where: str | Path | None) -> str | None:
    """``--store`` as a database URL: None/'' → the default file, ``none`` → None (no store)."""
    if where is None or str(where) == "":
        where = default_store_path()
    text = str(where)
    if text.lower() == "none":
        return None
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).expanduser()}"


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(value: datetime | None) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:  # SQLite gives naive datetimes back; they were written in UTC
        value = value.replace(tzinfo=timezone.utc)
    return value.isoformat(timespec="seconds")


class ConversationStore:
    """Sessions, turns and cases behind one interface.

    Args:
        url: A SQLAlchemy URL (``sqlite:///path``, ``postgresql+psycopg://user@host/db``) or a file path.
    """

    def __init__(self, url: str | Path) -> None:
        url = str(url)
        if "://" not in url:
            url = f"sqlite:///{Path(url).expanduser()}"
        self.url = url
        self._sqlite = url.startswith("sqlite")
        try:
            if self._sqlite:
                path = sa.engine.make_url(url).database
                if path and path != ":memory:":
                    Path(path).parent.mkdir(parents=True, exist_ok=True)
                self.engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
                sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            else:
                self.engine = sa.create_engine(url, pool_pre_ping=True)
        except (sa.exc.ArgumentError, ImportError) as exc:
            raise StoreError(f"cannot open store {self._shown()}: {exc} (give a file path or a sqlite:/// or postgresql+psycopg:// URL)") from None
        self._lock = threading.Lock()  # turn indexes are allocated under it (one process)
        self._ensure_schema()

    def _shown(self) -> str:
        return sa.engine.make_url(self.url).render_as_string(hide_password=True)

    def _ensure_schema(self) -> None:
        try:
            with self.engine.begin() as conn:
                names = set(sa.inspect(conn).get_table_names())
                if not names:
                    metadata.create_all(conn)
                    conn.execute(meta.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
                    return
                if "qagent_store" not in names:
                    raise StoreError(f"{self._shown()} is a database but not a qagent conversation store "
                                     "(give another --store file, or --store none)")
                version = conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version")).scalar()
                if version != str(SCHEMA_VERSION):
                    raise StoreError(f"{self._shown()} has store schema {version}; this qagent reads {SCHEMA_VERSION}")
        except sa.exc.DatabaseError as exc:
            raise StoreError(f"{self._shown()} is not a qagent conversation store ({_first_line(exc)}); "
                             "give another --store file, or --store none") from None
        except sa.exc.OperationalError as exc:
            raise StoreError(f"cannot open store {self._shown()}: {_first_line(exc)}") from None

    def close(self) -> None:
        self.engine.dispose()

    # --- turns -------------------------------------------------------------------------------
    def add_turn(self, session_id: str, role: str, text: str, *, nlu: dict[str, Any] | None = None,
                 route: str | None = None, reason: str | None = None, reply: str | None = None,
                 timings: dict[str, float] | None = None, delivered: bool = True) -> int:
        """Write one turn (and its session, the first time) in one transaction; returns its index."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
        values = dict(role=role, text=text, nlu=None if nlu is None else json.dumps(nlu, ensure_ascii=False),
                      route=route, reason=reason, reply=reply,
                      timings=None if timings is None else json.dumps(timings), delivered=delivered)
        # The lock orders this process's writers; another process (a second server on the same
        # database) can take the same index first, which the unique key refuses: try the next one.
        for attempt in range(5):
            now = _now()
            try:
                with self._lock, self.engine.begin() as conn:
                    self._touch(conn, session_id, now)
                    index = conn.execute(sa.select(sa.func.coalesce(sa.func.max(turns.c.turn_index), -1))
                                         .where(turns.c.session_id == session_id)).scalar_one() + 1
                    conn.execute(turns.insert().values(session_id=session_id, turn_index=index, created_at=now, **values))
                return index
            except sa.exc.IntegrityError:
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")

    def _touch(self, conn: sa.Connection, session_id: str, now: datetime) -> None:
        updated = conn.execute(sessions.update().where(sessions.c.session_id == session_id).values(updated_at=now))
        if updated.rowcount == 0:
            conn.execute(sessions.insert().values(session_id=session_id, created_at=now, updated_at=now, card_warned=False))

    def turns(self, session_id: str) -> list[StoredTurn]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(turns).where(turns.c.session_id == session_id).order_by(turns.c.turn_index)).all()
        return [_turn(r) for r in rows]

    def has_session(self, session_id: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sessions.c.session_id).where(sessions.c.session_id == session_id)).first() is not None

    def pending_person_replies(self, session_id: str) -> list[str]:
        """Replies a person wrote that the customer has not seen yet; marks them seen."""
        with self._lock, self.engine.begin() as conn:
            rows = conn.execute(sa.select(turns.c.id, turns.c.text).where(
                turns.c.session_id == session_id, turns.c.role == "person", turns.c.delivered.is_(False))
                .order_by(turns.c.turn_index)).all()
            if rows:
                conn.execute(turns.update().where(turns.c.id.in_([r.id for r in rows])).values(delivered=True))
        return [r.text for r in rows]

    def card_warned(self, session_id: str) -> bool:
        with self.engine.connect() as conn:
            return bool(conn.execute(sa.select(sessions.c.card_warned).where(sessions.c.session_id == session_id)).scalar())

    def mark_card_warned(self, session_id: str) -> None:
        with self._lock, self.engine.begin() as conn:
            self._touch(conn, session_id, _now())
            conn.execute(sessions.update().where(sessions.c.session_id == session_id).values(card_warned=True))

    # --- cases -------------------------------------------------------------------------------
    def open_case(self, session_id: str, *, reason: str, sentiment: str | None, summary: str,
                  flow: str | None = None, slots: dict[str, Any] | None = None) -> tuple[Case, bool]:
        """Open a case for the session, or return its open one; ``(case, opened_now)``."""
        now = _now()
        with self._lock, self.engine.begin() as conn:
            existing = conn.execute(sa.select(cases).where(
                cases.c.session_id == session_id, cases.c.status.in_(("open", "assigned"))).order_by(cases.c.id)).first()
            if existing is not None:
                return _case(existing), False
            self._touch(conn, session_id, now)
            new_id = conn.execute(cases.insert().values(
                session_id=session_id, flow=flow, slots=json.dumps(slots or {}, ensure_ascii=False), status="open",
                handoff_reason=reason, sentiment=sentiment, summary=summary, created_at=now, updated_at=now)
                .returning(cases.c.id)).scalar_one()
            row = conn.execute(sa.select(cases).where(cases.c.id == new_id)).one()
        return _case(row), True

    def case(self, case_id: int) -> Case:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(cases).where(cases.c.id == case_id)).first()
        if row is None:
            raise LookupError(f"no case {case_id} (see 'agent cases list')")
        return _case(row)

    def cases(self, statuses: tuple[str, ...] | None = None) -> list[Case]:
        for status in statuses or ():
            if status not in STATUSES:
                raise ValueError(f"status must be among {', '.join(STATUSES)}, got {status!r}")
        query = sa.select(cases).order_by(cases.c.id)
        if statuses:
            query = query.where(cases.c.status.in_(statuses))
        with self.engine.connect() as conn:
            return [_case(r) for r in conn.execute(query).all()]

    def set_status(self, case_id: int, status: str) -> Case:
        current = self.case(case_id)
        if status not in _NEXT.get(current.status, set()):
            raise ValueError(f"case {case_id} is {current.status}; it cannot become {status}")
        with self._lock, self.engine.begin() as conn:
            conn.execute(cases.update().where(cases.c.id == case_id).values(status=status, updated_at=_now()))
        return self.case(case_id)

    def reply_to_case(self, case_id: int, text: str) -> Case:
        """A person's reply: a ``person`` turn the customer sees the next time they write."""
        case = self.case(case_id)
        if case.status not in ("open", "assigned"):
            raise ValueError(f"case {case_id} is {case.status}; reopen it or open a new one to reply")
        if not text.strip():
            raise ValueError("the reply is empty")
        self.add_turn(case.session_id, "person", text, delivered=False)
        if case.status == "open":
            return self.set_status(case_id, "assigned")
        return case

    # --- retention ---------------------------------------------------------------------------
    def conversations_before(self, before: datetime) -> list[dict[str, Any]]:
        """Conversations last touched before ``before``, each with its turns and cases."""
        with self.engine.connect() as conn:
            ids = conn.execute(sa.select(sessions.c.session_id).where(sessions.c.updated_at < before)
                               .order_by(sessions.c.updated_at)).scalars().all()
        out = []
        for sid in ids:
            with self.engine.connect() as conn:
                case_rows = conn.execute(sa.select(cases).where(cases.c.session_id == sid)).all()
            out.append({"session_id": sid, "turns": [t.to_dict() for t in self.turns(sid)],
                        "cases": [_case(r).to_dict() for r in case_rows]})
        return out

    def purge(self, before: datetime) -> tuple[int, int]:
        """Delete conversations last touched before ``before`` (with their turns and closed cases),
        except those with an open or assigned case; returns ``(deleted, kept)``."""
        with self._lock, self.engine.begin() as conn:
            old = set(conn.execute(sa.select(sessions.c.session_id).where(sessions.c.updated_at < before)).scalars())
            held = set(conn.execute(sa.select(cases.c.session_id).where(
                cases.c.session_id.in_(old), cases.c.status.in_(("open", "assigned")))).scalars()) if old else set()
            doomed = sorted(old - held)
            if doomed:
                conn.execute(turns.delete().where(turns.c.session_id.in_(doomed)))
                conn.execute(cases.delete().where(cases.c.session_id.in_(doomed)))
                conn.execute(sessions.delete().where(sessions.c.session_id.in_(doomed)))
        return len(doomed), len(held)


def _sqlite_pragmas(dbapi_connection: Any, record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer (several UI sessions)
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _first_line(exc: BaseException) -> str:
    return str(getattr(exc, "orig", exc)).splitlines()[0]


def _loads(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def _turn(r: Any) -> StoredTurn:
    return StoredTurn(r.session_id, r.turn_index, r.role, r.text, r.route, r.reason, r.reply, _loads(r.nlu),
                      _loads(r.timings), _iso(r.created_at))


def _case(r: Any) -> Case:
    return Case(r.id, r.session_id, r.status, r.flow, json.loads(r.slots or "{}"), r.handoff_reason, r.sentiment,
                r.summary, _iso(r.created_at), _iso(r.updated_at))


def open_store(where: str | Path | None) -> ConversationStore | None:
    """``--store``'s value opened (None for ``none``)."""
    url = store_url(where)
    return None if url is None else ConversationStore(url)
