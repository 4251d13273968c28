"""The conversation store: sessions, turns and cases, in SQLite or PostgreSQL.

One code path (SQLAlchemy Core) serves both: a file path or ``sqlite:///…`` opens SQLite (WAL, so
the web UI's sessions can write while others read), ``postgresql+psycopg://…`` a server. Every
method takes its own connection from the engine's pool and writes in one transaction, so one store
is shared by all threads. The schema is created on first use; a file that exists but holds no
qagent store is refused with one clear error instead of being written into.

A customer's turn row holds the whole exchange (message, NLU result, route, reason, reply,
timings); a ``person`` row is a reply written on the conversation's case (``agent cases reply``, the
web UI's Desk), with its author.

A person can *take* a case (:meth:`ConversationStore.take_case`): the case becomes ``assigned`` to
them and its conversation is *held* (``conversations.held_by``), so the assistant stays silent
while they talk with the customer, until they hand it back or resolve the case.

Schema versions: 1 (sessions, turns, cases); 2 adds ``cases.assignee``,
``conversations.held_by``/``held_since`` and ``turns.author``. A version-1 store is migrated in
place when it is opened (the columns are added, every row kept).

Card numbers never reach here: the assistant masks them first (:mod:`agent.cards`).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa

SCHEMA_VERSION = 2
# Columns each version added, in order: opening an older store adds them (see _migrate).
ADDED_IN = {2: (("conversations", "held_by"), ("conversations", "held_since"), ("cases", "assignee"),
                ("turns", "author"))}
STATUSES = ("open", "assigned", "resolved", "cancelled")
ACTIVE = ("open", "assigned")  # the cases a person still works on (the desk lists them)
ROLES = ("customer", "assistant", "person")
T = TypeVar("T")
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
    sa.Column("held_by", sa.String(200)),  # the person answering this conversation; NULL: the assistant does
    sa.Column("held_since", sa.DateTime(timezone=True)),
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
    sa.Column("author", sa.String(200)),  # who wrote a person turn
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
    sa.Column("assignee", sa.String(200)),  # the person who took the case
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
    author: str | None = None  # the person who wrote a ``person`` turn

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
    assignee: str | None = None  # who took the case
    held_by: str | None = None  # who holds its conversation now (None: the assistant answers)

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
                if version in {str(v) for v in range(1, SCHEMA_VERSION)}:
                    _migrate(conn, int(version))
                elif version != str(SCHEMA_VERSION):
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
        return self._write(lambda conn, now: self._insert_turn(conn, session_id, now, values))

    def _write(self, work: Callable[[sa.Connection, datetime], T]) -> T:
        """Run ``work(conn, now)`` in one transaction under the process's writer lock.

        The lock orders this process's writers; another process (a second server on the same
        database) can take the same turn index first, which the unique key refuses: try again.
        """
        for attempt in range(5):
            try:
                with self._lock, self.engine.begin() as conn:
                    return work(conn, _now())
            except sa.exc.IntegrityError:
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")

    def _insert_turn(self, conn: sa.Connection, session_id: str, now: datetime, values: dict[str, Any]) -> int:
        self._touch(conn, session_id, now)
        index = conn.execute(sa.select(sa.func.coalesce(sa.func.max(turns.c.turn_index), -1))
                             .where(turns.c.session_id == session_id)).scalar_one() + 1
        conn.execute(turns.insert().values(session_id=session_id, turn_index=index, created_at=now, **values))
        return index

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
        return [t.text for t in self.pending_person_turns(session_id)]

    def pending_person_turns(self, session_id: str) -> list[StoredTurn]:
        """:meth:`pending_person_replies` with each reply's author (the web chat names them)."""
        with self._lock, self.engine.begin() as conn:
            rows = conn.execute(sa.select(turns).where(
                turns.c.session_id == session_id, turns.c.role == "person", turns.c.delivered.is_(False))
                .order_by(turns.c.turn_index)).all()
            if rows:
                conn.execute(turns.update().where(turns.c.id.in_([r.id for r in rows])).values(delivered=True))
        return [_turn(r) for r in rows]

    def held_by(self, session_id: str) -> str | None:
        """The person holding the conversation (the assistant stays silent), or None."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sessions.c.held_by).where(sessions.c.session_id == session_id)).scalar()

    def turns_while_held(self, session_id: str) -> int:
        """Customer turns written since the current hold began (0 when nobody holds the conversation)."""
        with self.engine.connect() as conn:
            since = conn.execute(sa.select(sessions.c.held_since).where(
                sessions.c.session_id == session_id, sessions.c.held_by.is_not(None))).scalar()
            if since is None:
                return 0
            return conn.execute(sa.select(sa.func.count()).select_from(turns).where(
                turns.c.session_id == session_id, turns.c.role == "customer", turns.c.created_at >= since)).scalar_one()

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
        def work(conn: sa.Connection, now: datetime) -> tuple[Case, bool]:
            existing = conn.execute(_select_cases().where(
                cases.c.session_id == session_id, cases.c.status.in_(ACTIVE)).order_by(cases.c.id)).first()
            if existing is not None:
                return _case(existing), False
            self._touch(conn, session_id, now)
            new_id = conn.execute(cases.insert().values(
                session_id=session_id, flow=flow, slots=json.dumps(slots or {}, ensure_ascii=False), status="open",
                handoff_reason=reason, sentiment=sentiment, summary=summary, created_at=now, updated_at=now)
                .returning(cases.c.id)).scalar_one()
            return _read_case(conn, new_id), True

        return self._write(work)

    def case(self, case_id: int) -> Case:
        with self.engine.connect() as conn:
            return _read_case(conn, case_id)

    def cases(self, statuses: tuple[str, ...] | None = None) -> list[Case]:
        for status in statuses or ():
            if status not in STATUSES:
                raise ValueError(f"status must be among {', '.join(STATUSES)}, got {status!r}")
        query = _select_cases().order_by(cases.c.id)
        if statuses:
            query = query.where(cases.c.status.in_(statuses))
        with self.engine.connect() as conn:
            return [_case(r) for r in conn.execute(query).all()]

    def desk_cases(self) -> list[Case]:
        """The cases a person still has to work on (open and assigned), for the desk.

        Most upset first, then newest: every case with negative sentiment comes before the
        others, and within each group the most recently opened case comes first (a customer who
        just asked for a person is still there to be answered; an hours-old case can wait minutes
        more). Ties in time go to the higher case number.
        """
        upset_first = sa.case((cases.c.sentiment == "negative", 0), else_=1)
        query = (_select_cases().where(cases.c.status.in_(ACTIVE))
                 .order_by(upset_first, cases.c.created_at.desc(), cases.c.id.desc()))
        with self.engine.connect() as conn:
            return [_case(r) for r in conn.execute(query).all()]

    def set_status(self, case_id: int, status: str) -> Case:
        """Move a case on (see :data:`STATUSES`). Resolving or cancelling it releases its conversation
        to the assistant; reopening it also forgets who took it."""
        def work(conn: sa.Connection, now: datetime) -> Case:
            current = _read_case(conn, case_id, lock=True)
            if status not in _NEXT.get(current.status, set()):
                raise ValueError(f"case {case_id} is {current.status}; it cannot become {status}")
            values: dict[str, Any] = {"status": status, "updated_at": now}
            if status == "open":
                values["assignee"] = None
            conn.execute(cases.update().where(cases.c.id == case_id).values(**values))
            if status != "assigned":
                _release(conn, current.session_id)
            return _read_case(conn, case_id)

        return self._write(work)

    def take_case(self, case_id: int, person: str) -> Case:
        """``person`` takes the case: it becomes assigned to them and they hold its conversation
        (the assistant stays silent there until :meth:`hand_back` or the case is resolved).

        Taking a case someone else holds is refused: they hand it back first, so two people never
        answer one customer without knowing of each other.
        """
        person = _person(person)

        def work(conn: sa.Connection, now: datetime) -> Case:
            current = _read_case(conn, case_id, lock=True)
            if current.status not in ACTIVE:
                raise ValueError(f"case {case_id} is {current.status}; only open or assigned cases can be taken")
            if current.held_by == person:
                return current
            if current.held_by is not None:
                raise ValueError(f"case {case_id} is held by {current.held_by}; hand it back first to take it over")
            conn.execute(cases.update().where(cases.c.id == case_id).values(status="assigned", assignee=person,
                                                                            updated_at=now))
            conn.execute(sessions.update().where(sessions.c.session_id == current.session_id)
                         .values(held_by=person, held_since=now))
            return _read_case(conn, case_id)

        return self._write(work)

    def hand_back(self, case_id: int) -> Case:
        """Release the case's conversation to the assistant, which answers the customer's next message.

        The case stays ``assigned`` (to the same person): they talked with the customer and still
        own the follow-up, and can resolve it later; handing back is not giving the case up.
        """
        def work(conn: sa.Connection, now: datetime) -> Case:
            current = _read_case(conn, case_id, lock=True)
            if current.held_by is None:
                raise ValueError(f"case {case_id}'s conversation is not held by a person; the assistant already answers")
            _release(conn, current.session_id)
            conn.execute(cases.update().where(cases.c.id == case_id).values(updated_at=now))
            return _read_case(conn, case_id)

        return self._write(work)

    def reply_to_case(self, case_id: int, text: str, person: str | None = None) -> Case:
        """A person's reply: a ``person`` turn the customer sees the next time they write (the
        web chat shows it within seconds). An open case becomes assigned, to ``person`` if given.

        Args:
            case_id: The case.
            text: What to tell the customer.
            person: Who writes (shown to the customer with the reply); None for an unnamed team member.
        """
        if not text.strip():
            raise ValueError("the reply is empty")
        author = None if person is None else _person(person)

        def work(conn: sa.Connection, now: datetime) -> Case:
            current = _read_case(conn, case_id, lock=True)
            if current.status not in ACTIVE:
                raise ValueError(f"case {case_id} is {current.status}; reopen it or open a new one to reply")
            self._insert_turn(conn, current.session_id, now,
                              dict(role="person", text=text, author=author, delivered=False))
            values: dict[str, Any] = {"updated_at": now}
            if current.status == "open":
                values.update(status="assigned", assignee=author)
            elif current.assignee is None and author is not None:
                values["assignee"] = author
            conn.execute(cases.update().where(cases.c.id == case_id).values(**values))
            return _read_case(conn, case_id)

        return self._write(work)

    # --- retention ---------------------------------------------------------------------------
    def conversations_before(self, before: datetime) -> list[dict[str, Any]]:
        """Conversations last touched before ``before``, each with its turns and cases."""
        with self.engine.connect() as conn:
            ids = conn.execute(sa.select(sessions.c.session_id).where(sessions.c.updated_at < before)
                               .order_by(sessions.c.updated_at)).scalars().all()
        out = []
        for sid in ids:
            with self.engine.connect() as conn:
                case_rows = conn.execute(_select_cases().where(cases.c.session_id == sid)).all()
            out.append({"session_id": sid, "turns": [t.to_dict() for t in self.turns(sid)],
                        "cases": [_case(r).to_dict() for r in case_rows]})
        return out

    def purge(self, before: datetime) -> tuple[int, int]:
        """Delete conversations last touched before ``before`` (with their turns and closed cases),
        except those with an open or assigned case; returns ``(deleted, kept)``."""
        with self._lock, self.engine.begin() as conn:
            old = set(conn.execute(sa.select(sessions.c.session_id).where(sessions.c.updated_at < before)).scalars())
            held = set(conn.execute(sa.select(cases.c.session_id).where(
                cases.c.session_id.in_(old), cases.c.status.in_(ACTIVE))).scalars()) if old else set()
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
                      _loads(r.timings), _iso(r.created_at), r.author)


def _select_cases() -> sa.Select:
    """Cases with who holds their conversation."""
    return sa.select(cases, sessions.c.held_by).join_from(cases, sessions, cases.c.session_id == sessions.c.session_id)


def _read_case(conn: sa.Connection, case_id: int, *, lock: bool = False) -> Case:
    query = _select_cases().where(cases.c.id == case_id)
    # FOR UPDATE (PostgreSQL; SQLite locks the whole file on write): two desks taking or replying
    # to one case at once are serialised, so the second sees what the first did.
    row = conn.execute(query.with_for_update(of=cases) if lock else query).first()
    if row is None:
        raise LookupError(f"no case {case_id} (see 'agent cases list')")
    return _case(row)


def _case(r: Any) -> Case:
    return Case(r.id, r.session_id, r.status, r.flow, json.loads(r.slots or "{}"), r.handoff_reason, r.sentiment,
                r.summary, _iso(r.created_at), _iso(r.updated_at), r.assignee, r.held_by)


def _release(conn: sa.Connection, session_id: str) -> None:
    conn.execute(sessions.update().where(sessions.c.session_id == session_id).values(held_by=None, held_since=None))


def _person(name: str) -> str:
    name = " ".join(str(name).split())
    if not name:
        raise ValueError("give the person's name (--as NAME)")
    if len(name) > 200:
        raise ValueError(f"the person's name is {len(name)} characters; 200 at most")
    return name


def _migrate(conn: sa.Connection, version: int) -> None:
    """Bring a store written by an older qagent up to :data:`SCHEMA_VERSION`, in place.

    Only columns are added (NULL in existing rows), so every row is kept and older readers' data
    stays valid. Columns already there are skipped: SQLite runs ALTER TABLE outside the
    transaction, so a migration cut short is finished by the next open.
    """
    inspector = sa.inspect(conn)
    for step in range(version + 1, SCHEMA_VERSION + 1):
        for table_name, column_name in ADDED_IN[step]:
            present = {c["name"] for c in inspector.get_columns(table_name)}
            if column_name in present:
                continue
            column = metadata.tables[table_name].c[column_name]
            kind = column.type.compile(dialect=conn.dialect)
            preparer = conn.dialect.identifier_preparer
            conn.execute(sa.text(f"ALTER TABLE {preparer.quote(table_name)} ADD COLUMN {preparer.quote(column_name)} {kind}"))
    conn.execute(meta.update().where(meta.c.key == "schema_version").values(value=str(SCHEMA_VERSION)))


def open_store(where: str | Path | None) -> ConversationStore | None:
    """``--store``'s value opened (None for ``none``)."""
    url = store_url(where)
    return None if url is None else ConversationStore(url)
