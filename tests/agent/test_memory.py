"""Conversation memory: per-session history, bounds, expiry, follow-up topic, thread safety."""

from __future__ import annotations

import threading

import pytest

from agent.memory import ConversationMemory, Topic, looks_like_follow_up


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_history_is_per_session_in_order():
    memory = ConversationMemory()
    memory.add_turn("a", "my card hasn't arrived", "Track it in Cards > Track delivery.",
                    intent="card_arrival", answer_id="card-arrival-001")
    memory.add_turn("b", "hello", "Hi! How can I help?")
    assert memory.history("a") == [("user", "my card hasn't arrived"),
                                   ("assistant", "Track it in Cards > Track delivery.")]
    assert memory.history("b") == [("user", "hello"), ("assistant", "Hi! How can I help?")]
    assert memory.history("unknown") == [] and memory.last_topic("unknown") is None


def test_last_topic_resolves_a_follow_up_against_the_previous_answer():
    memory = ConversationMemory()
    memory.add_turn("s", "how do I order a physical card?", "Go to Cards > Add card.",
                    intent="order_physical_card", answer_id="order-physical-card-001")
    memory.add_turn("s", "thanks!", "You're welcome.")  # smalltalk has no topic and must not hide it
    assert looks_like_follow_up("and how long does that take?")
    assert memory.last_topic("s") == Topic("order_physical_card", "order-physical-card-001")


@pytest.mark.parametrize(("message", "expected"), [
    ("and how long does that take?", True),
    ("what about in the EEA?", True),
    ("is it free?", True),
    ("How long does card delivery take to addresses in the European Economic Area?", False),
    ("I want to order a new card", False),
    ("", False),
])
def test_looks_like_follow_up(message, expected):
    assert looks_like_follow_up(message) is expected


def test_turns_per_session_are_bounded():
    memory = ConversationMemory(max_turns=2)
    for i in range(5):
        memory.add_turn("s", f"q{i}", f"a{i}")
    assert memory.history("s") == [("user", "q3"), ("assistant", "a3"), ("user", "q4"), ("assistant", "a4")]


def test_least_recently_used_session_is_evicted():
    memory = ConversationMemory(max_sessions=2)
    memory.add_turn("old", "q", "a")
    memory.add_turn("mid", "q", "a")
    memory.history("old")  # reading a session counts as using it
    memory.add_turn("new", "q", "a")
    assert "mid" not in memory and "old" in memory and "new" in memory and len(memory) == 2


def test_idle_sessions_expire():
    clock = FakeClock()
    memory = ConversationMemory(ttl_s=60, clock=clock)
    memory.add_turn("s", "q", "a", intent="card_arrival")
    clock.now = 59
    assert memory.last_topic("s") == Topic("card_arrival", None)
    clock.now = 59 + 61
    assert memory.history("s") == [] and len(memory) == 0


def test_clear_forgets_one_session():
    memory = ConversationMemory()
    memory.add_turn("a", "q", "r")
    memory.add_turn("b", "q", "r")
    memory.clear("a")
    memory.clear("never-seen")
    assert memory.history("a") == [] and memory.history("b") != []


@pytest.mark.parametrize("kwargs", [{"max_turns": 0}, {"max_sessions": 0}, {"ttl_s": 0}])
def test_bad_settings_are_rejected(kwargs):
    with pytest.raises(ValueError, match="must be"):
        ConversationMemory(**kwargs)


def test_concurrent_sessions_keep_every_turn():
    memory = ConversationMemory(max_turns=100, max_sessions=100)

    def chat(session: str) -> None:
        for i in range(50):
            memory.add_turn(session, f"q{i}", f"a{i}", intent=f"i{i}")
            memory.history(session)
            memory.last_topic(session)

    threads = [threading.Thread(target=chat, args=(f"s{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(memory) == 8
    for n in range(8):
        assert [t.user for t in memory.turns(f"s{n}")] == [f"q{i}" for i in range(50)]
        assert memory.last_topic(f"s{n}") == Topic("i49", None)
