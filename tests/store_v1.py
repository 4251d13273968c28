"""A conversation store as qagent wrote it at schema version 1 (before cases had assignees and
conversations could be held), for the migration tests. Frozen: never update it to the current schema.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import sqlalchemy as sa

V1 = sa.MetaData()
sa.Table("qagent_store", V1, sa.Column("key", sa.String(64), primary_key=True),
         sa.Column("value", sa.String(256), nullable=False))
sa.Table(
    "conversations", V1,
    sa.Column("session_id", sa.String(200), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("card_warned", sa.Boolean, nullable=False),
)
sa.Table(
    "turns", V1,
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
    sa.Column("delivered", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("session_id", "turn_index"),
)
sa.Table(
    "cases", V1,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("session_id", sa.String(200), sa.ForeignKey("conversations.session_id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("flow", sa.String(64)),
    sa.Column("slots", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("handoff_reason", sa.Text),
    sa.Column("sentiment", sa.String(32)),
    sa.Column("summary", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

SESSION = "v1-alice"


def write_v1_store(url: str) -> None:
    """Create a version-1 store at ``url`` holding one conversation: two customer turns, a person's
    reply not yet seen, and an open case."""
    engine = sa.create_engine(url)
    now = datetime(2024, 11, 1, 9, 30, tzinfo=timezone.utc)  # long before any test runs
    t = V1.tables
    with engine.begin() as conn:
        V1.create_all(conn)
        conn.execute(t["qagent_store"].insert().values(key="schema_version", value="1"))
        conn.execute(t["conversations"].insert().values(session_id=SESSION, created_at=now, updated_at=now, card_warned=False))
        blank = dict(session_id=SESSION, nlu=None, route=None, reason=None, reply=None, timings=None, created_at=now)
        conn.execute(t["turns"].insert(), [
            {**blank, "turn_index": 0, "role": "customer", "text": "where is my card?", "route": "answer",
             "reason": "intent confident", "reply": "Standard delivery takes 3 to 5 working days.",
             "nlu": json.dumps({"intent": "card_arrival", "memory_intent": "card_arrival"}), "delivered": True},
            {**blank, "turn_index": 1, "role": "customer", "text": "I want to speak to a person please",
             "route": "handoff", "reason": "the customer asked for a person", "reply": "Your case number is 1.",
             "delivered": True},
            {**blank, "turn_index": 2, "role": "person", "text": "Hello, I'm on it", "delivered": False},
        ])
        conn.execute(t["cases"].insert().values(
            session_id=SESSION, slots=json.dumps({"card": {"text": "my card", "value": "debit"}}), status="open",
            handoff_reason="the customer asked for a person", sentiment="negative",
            summary="where is my card? / I want to speak to a person please", created_at=now, updated_at=now))
    engine.dispose()
