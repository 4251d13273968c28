"""Conversation memory: the last few turns of each chat session, bounded and thread-safe.

The web UI serves several sessions at once, so every method takes the lock. Memory is bounded
three ways: turns per session (oldest dropped), number of sessions (least recently used evicted)
and idle time (sessions unused for ``ttl_s`` are forgotten). Each turn keeps the intent and the
knowledge-base answer id it was served with, so a follow-up such as "and how long does that take?"
can be resolved against :meth:`ConversationMemory.last_topic`.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Turn:
    """One exchange: what the customer said, what we replied, and what it was about."""

    user: str
    reply: str
    intent: str | None = None
    answer_id: str | None = None
    at: float = 0.0
    route: str | None = None
    options: tuple[str, ...] = ()  # intents a clarifying question offered
    flow: dict | None = field(default=None, compare=False)  # the flow in progress after this turn (agent.flows)


@dataclass(frozen=True)
class Topic:
    """What the latest turn that had one was about: its intent and the answer it was served."""

    intent: str | None
    answer_id: str | None


@dataclass
class _Session:
    turns: deque[Turn]
    touched: float = field(default=0.0)


_FOLLOW_UP = re.compile(
    r"^\s*(?:and|also|but|so|what about|how about|then)\b"
    r"|\b(?:that|it|this|those|them|there)\b", re.I)


def looks_like_follow_up(message: str, max_words: int = 10) -> bool:
    """A short message that leans on the previous turn ("and how long does that take?").

    A cheap heuristic for the router: it only says the message *may* need the last topic.
    """
    words = re.findall(r"\w+", message or "")
    return 0 < len(words) <= max_words and bool(_FOLLOW_UP.search(message))


class ConversationMemory:
    """Per-session conversation history.

    Args:
        max_turns: Exchanges kept per session (one exchange = the customer's message + our reply).
        max_sessions: Sessions kept; the least recently used is evicted beyond this.
        ttl_s: Seconds a session may stay idle before it is forgotten (``None``: forever).
        clock: Time source in seconds (tests pass a fake one).
    """

    def __init__(self, max_turns: int = 10, max_sessions: int = 1000, ttl_s: float | None = 3600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_turns < 1:
            raise ValueError(f"max_turns must be >= 1, got {max_turns}")
        if max_sessions < 1:
            raise ValueError(f"max_sessions must be >= 1, got {max_sessions}")
        if ttl_s is not None and ttl_s <= 0:
            raise ValueError(f"ttl_s must be > 0 or None, got {ttl_s}")
        self.max_turns, self.max_sessions, self.ttl_s, self._clock = max_turns, max_sessions, ttl_s, clock
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._lock = threading.Lock()

    def _expire(self, now: float) -> None:
        if self.ttl_s is None:
            return
        while self._sessions:
            oldest_id, oldest = next(iter(self._sessions.items()))
            if now - oldest.touched <= self.ttl_s:
                break
            del self._sessions[oldest_id]

    def _get(self, session_id: str, create: bool) -> _Session | None:
        now = self._clock()
        self._expire(now)
        session = self._sessions.get(session_id)
        if session is None and create:
            session = self._sessions[session_id] = _Session(deque(maxlen=self.max_turns))
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)
        if session is not None:
            session.touched = now
            self._sessions.move_to_end(session_id)
        return session

    def add_turn(self, session_id: str, user: str, reply: str, *, intent: str | None = None,
                 answer_id: str | None = None, route: str | None = None, options: tuple[str, ...] = (),
                 flow: dict | None = None) -> None:
        """Record one exchange; the oldest exchange beyond ``max_turns`` is dropped."""
        with self._lock:
            session = self._get(session_id, create=True)
            assert session is not None
            session.turns.append(Turn(user, reply, intent, answer_id, self._clock(), route, tuple(options), flow))

    def flow(self, session_id: str) -> dict | None:
        """The flow the latest exchange left in progress (None: no flow open)."""
        turns = self.turns(session_id)
        return turns[-1].flow if turns else None

    def pending_options(self, session_id: str) -> tuple[str, ...]:
        """The intents offered by the latest exchange if it was a clarifying question, else ()."""
        turns = self.turns(session_id)
        return turns[-1].options if turns and turns[-1].route == "clarify" else ()

    def failures(self, session_id: str, routes: tuple[str, ...] = ("clarify", "out_of_scope")) -> int:
        """How many of the latest exchanges in a row went down one of ``routes`` (no answer found)."""
        count = 0
        for turn in reversed(self.turns(session_id)):
            if turn.route not in routes:
                break
            count += 1
        return count

    def turns(self, session_id: str) -> list[Turn]:
        """The session's exchanges, oldest first (empty for an unknown or expired session)."""
        with self._lock:
            session = self._get(session_id, create=False)
            return list(session.turns) if session else []

    def history(self, session_id: str) -> list[tuple[str, str]]:
        """``(role, text)`` pairs, oldest first, role ``"user"`` or ``"assistant"``."""
        return [pair for t in self.turns(session_id) for pair in (("user", t.user), ("assistant", t.reply))]

    def last_topic(self, session_id: str) -> Topic | None:
        """Intent and answer id of the latest exchange that had either, or ``None``."""
        for turn in reversed(self.turns(session_id)):
            if turn.intent or turn.answer_id:
                return Topic(turn.intent, turn.answer_id)
        return None

    def clear(self, session_id: str) -> None:
        """Forget one session (no error when it is unknown)."""
        with self._lock:
            self._sessions.pop(session_id, None)

    def __len__(self) -> int:
        with self._lock:
            self._expire(self._clock())
            return len(self._sessions)

    def __contains__(self, session_id: object) -> bool:
        with self._lock:
            self._expire(self._clock())
            return session_id in self._sessions
