import re
import sqlite3
import threading
from datetime import datetime, timedelta, timezone

import pytest

from agent.cards import luhn_valid
from agent.store import ConversationStore, StoreError, open_store, store_url
from assistant_fakes import GOOD, make

PERSON = "I want to speak to a person please"


def test_turns_are_written_and_read_back_in_order(tmp_path):
    store = ConversationStore(tmp_path / "a.db")
    assert store.add_turn("s1", "customer", "hello", route="smalltalk", reply="Hi", nlu={"intent": "x"}) == 0
    assert store.add_turn("s1", "customer", "again", route="smalltalk", reply="Hi") == 1
    turns = store.turns("s1")
    assert [t.text for t in turns] == ["hello", "again"] and turns[0].nlu == {"intent": "x"}
    assert store.turns("other") == []


def test_store_url_and_none(tmp_path, monkeypatch):
    monkeypatch.setenv("QAGENT_HOME", str(tmp_path))
    assert store_url(None) == f"sqlite:///{tmp_path / 'assistant.db'}"
    assert open_store("none") is None
    assert store_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"


def test_a_file_that_is_not_a_store_is_one_clear_error(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(StoreError, match="not a qagent conversation store"):
        ConversationStore(junk)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("create table things (x int)")
    with pytest.raises(StoreError, match="not a qagent conversation store"):
        ConversationStore(other)


def test_restart_continues_the_session(tmp_path):
    db = tmp_path / "a.db"
    first, _ = make([GOOD], store=ConversationStore(db))
    first.respond("where is my card?", "alice")
    second, index = make([GOOD], store=ConversationStore(db))  # a restarted process: new objects, same file
    assert second.memory.turns("alice") == []
    second.respond("and how long does that take?", "alice")
    assert [t.user for t in second.memory.turns("alice")] == ["where is my card?", "and how long does that take?"]
    assert index.queries[-1] == "card_arrival"  # the follow-up was resolved against the restored topic
    assert len(ConversationStore(db).turns("alice")) == 2


def test_without_a_store_nothing_is_written(tmp_path):
    assistant, _ = make([GOOD])
    assert assistant.store is None and assistant.pending_replies("x") == []
    assistant.respond("where is my card?", "x")


def test_reset_does_not_restore_again(tmp_path):
    db = tmp_path / "a.db"
    assistant, _ = make([GOOD, GOOD], store=ConversationStore(db))
    assistant.respond("where is my card?", "bob")
    assistant.reset("bob")
    assistant.respond("hello", "bob")
    assert [t.user for t in assistant.memory.turns("bob")] == ["hello"]


def test_concurrent_sessions_write_every_turn(tmp_path):
    store = ConversationStore(tmp_path / "a.db")
    errors: list[BaseException] = []

    def talk(name: str) -> None:
        try:
            for i in range(15):
                store.add_turn(name, "customer", f"{name} {i}", reply="ok")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=talk, args=(f"s{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for n in range(4):
        assert [t.turn_index for t in store.turns(f"s{n}")] == list(range(15))


def test_handoff_opens_one_case_and_tells_the_number(tmp_path):
    store = ConversationStore(tmp_path / "a.db")
    assistant, _ = make([GOOD], store=store)
    assistant.respond("where is my card?", "carol")
    reply = assistant.respond(PERSON, "carol")
    assert reply.route == "handoff"
    [case] = store.cases()
    assert f"case number is {case.id}" in reply.text
    assert case.status == "open" and case.session_id == "carol" and case.flow is None and case.slots == {}
    assert "speak to a person" in case.summary and "where is my card" in case.summary
    assert case.handoff_reason == "the customer asked for a person" and case.sentiment == "neutral"
    again = assistant.respond(PERSON, "carol")
    assert len(store.cases()) == 1 and f"case {case.id} is already open" in again.text


def test_person_reply_is_a_turn_seen_once_and_resolve(tmp_path):
    store = ConversationStore(tmp_path / "a.db")
    assistant, _ = make([], store=store)
    assistant.respond(PERSON, "dan")
    [case] = store.cases()
    assert store.reply_to_case(case.id, "Hi Dan, I'm looking at it").status == "assigned"
    assert assistant.pending_replies("dan") == ["Hi Dan, I'm looking at it"]
    assert assistant.pending_replies("dan") == []
    assert [t.role for t in store.turns("dan")] == ["customer", "person"]
    assert store.set_status(case.id, "resolved").status == "resolved"
    with pytest.raises(ValueError, match="resolved"):
        store.set_status(case.id, "resolved")
    with pytest.raises(LookupError, match="no case 99"):
        store.case(99)


def test_purge_keeps_conversations_with_open_cases(tmp_path):
    store = ConversationStore(tmp_path / "a.db")
    assistant, _ = make([], store=store)
    assistant.respond("hello", "old")
    assistant.respond(PERSON, "held")
    later = datetime.now(timezone.utc) + timedelta(days=1)
    assert [r["session_id"] for r in store.conversations_before(later)] == ["old", "held"]
    assert store.purge(later) == (1, 1)
    assert store.turns("old") == [] and len(store.turns("held")) == 1
    assert store.purge(datetime.now(timezone.utc) - timedelta(days=1)) == (0, 0)


def test_card_numbers_never_reach_the_models_the_store_or_the_reply(tmp_path):
    db = tmp_path / "a.db"
    assistant, _ = make([GOOD], store=ConversationStore(db))
    seen: list[str] = []
    understand = assistant.nlu.understand
    assistant.nlu.understand = lambda m: seen.append(m) or understand(m)
    first = assistant.respond("where is my card? it is 4111 1111 1111 1111", "eve")
    second = assistant.respond("my card 4111-1111-1111-1111 again, speak to a person", "eve")
    assert all("4111 1111" not in m and "4111111111111111" not in m for m in seen)
    assert "•••• 1111" in seen[0]
    assert "never share your full card number" in first.text
    assert "never share your full card number" not in second.text  # told once per conversation
    assert "4111" not in first.text.replace("•••• 1111", "")
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    # The card's digits in any spacing; a generic Luhn scan of the raw file would also hit
    # timestamps and row ids that run into each other, so the test looks for this card.
    assert not re.search(rb"4111[ -]?1111[ -]?1111[ -]?1111", raw)
    assert luhn_valid("4111111111111111")  # the number the test hides is a real card number


# --- taking a case: the desk ----------------------------------------------------------------


def _handed_off(tmp_path, replies=(GOOD,), session="fay"):
    store = ConversationStore(tmp_path / "a.db")
    assistant, _ = make(list(replies), store=store)
    assistant.respond(PERSON, session)
    [case] = store.cases()
    return store, assistant, case


def test_a_person_takes_the_case_and_the_assistant_stays_silent_until_hand_back(tmp_path):
    store, assistant, case = _handed_off(tmp_path)
    understood: list[str] = []
    understand = assistant.nlu.understand
    assistant.nlu.understand = lambda m: understood.append(m) or understand(m)

    taken = store.take_case(case.id, "Dana")
    assert (taken.status, taken.assignee, taken.held_by) == ("assigned", "Dana", "Dana")
    assert store.held_by("fay") == "Dana" and store.held_by("nobody") is None

    first = assistant.respond("where is my card?", "fay")
    assert first.route == "handoff" and first.text == assistant.HELD_NOTICE
    assert first.reason == "a person (Dana) holds this conversation"
    second = assistant.respond("hello? where is my card?", "fay")
    assert second.text == "" and second.route == "handoff"  # said once per hold; the person answers now
    assert understood == []  # no model ran (the fake language model has nothing to say either)
    stored = store.turns("fay")
    assert [(t.text, t.route, t.reply) for t in stored[-2:]] == [
        ("where is my card?", "handoff", assistant.HELD_NOTICE), ("hello? where is my card?", "handoff", "")]

    back = store.hand_back(case.id)
    assert (back.status, back.assignee, back.held_by) == ("assigned", "Dana", None)  # still Dana's to resolve
    answered = assistant.respond("where is my card?", "fay")
    assert answered.route == "answer" and answered.text == GOOD and understood == ["where is my card?"]

    store.take_case(case.id, "Dana")  # a new hold: the customer is told again, once
    assert assistant.respond("thanks", "fay").text == assistant.HELD_NOTICE
    resolved = store.set_status(case.id, "resolved")
    assert resolved.held_by is None and store.held_by("fay") is None and resolved.assignee == "Dana"


def test_a_held_conversation_still_masks_and_warns_about_card_numbers(tmp_path):
    store, assistant, case = _handed_off(tmp_path)
    store.take_case(case.id, "Dana")
    reply = assistant.respond("it is 4111 1111 1111 1111", "fay")
    assert reply.text.startswith(assistant.HELD_NOTICE) and "never share your full card number" in reply.text
    assert reply.reason.endswith("card number masked")
    assert store.turns("fay")[-1].text == "it is •••• 1111"


def test_taking_handing_back_and_replying_refuse_what_makes_no_sense(tmp_path):
    store, _, case = _handed_off(tmp_path)
    with pytest.raises(ValueError, match="not held by a person"):
        store.hand_back(case.id)
    with pytest.raises(ValueError, match="give the person's name"):
        store.take_case(case.id, "  ")
    store.take_case(case.id, "Dana")
    assert store.take_case(case.id, " Dana ").held_by == "Dana"  # taking your own case again changes nothing
    with pytest.raises(ValueError, match="held by Dana; hand it back first"):
        store.take_case(case.id, "Eli")
    store.hand_back(case.id)
    assert store.take_case(case.id, "Eli").assignee == "Eli"  # handed back, anyone may take it over
    store.set_status(case.id, "resolved")
    with pytest.raises(ValueError, match="case 1 is resolved; only open or assigned"):
        store.take_case(case.id, "Dana")
    with pytest.raises(ValueError, match="resolved; reopen it"):
        store.reply_to_case(case.id, "hi", person="Dana")
    with pytest.raises(LookupError, match="no case 42"):
        store.take_case(42, "Dana")


def test_reopening_a_case_forgets_who_took_it_and_releases_the_conversation(tmp_path):
    store, _, case = _handed_off(tmp_path)
    store.take_case(case.id, "Dana")
    reopened = store.set_status(case.id, "open")
    assert (reopened.status, reopened.assignee, reopened.held_by) == ("open", None, None)


def test_a_named_reply_assigns_the_case_and_carries_its_author(tmp_path):
    store, assistant, case = _handed_off(tmp_path)
    replied = store.reply_to_case(case.id, "Hi, Dana here", person="Dana")
    assert (replied.status, replied.assignee, replied.held_by) == ("assigned", "Dana", None)  # replying is not taking
    [turn] = store.pending_person_turns("fay")
    assert (turn.role, turn.text, turn.author) == ("person", "Hi, Dana here", "Dana")
    assert assistant.pending_replies("fay") == []  # seen once, whichever way it was read
    store.reply_to_case(case.id, "and Eli")
    assert store.case(case.id).assignee == "Dana" and store.turns("fay")[-1].author is None


def test_the_desk_lists_open_and_assigned_cases_upset_first_then_newest(tmp_path):
    store = ConversationStore(tmp_path / "a.db")
    opened = {}
    for name, sentiment in [("calm-old", "neutral"), ("angry-old", "negative"), ("calm-new", "positive"),
                            ("angry-new", "negative"), ("unknown", None), ("done", "negative")]:
        opened[name], _ = store.open_case(name, reason="asked", sentiment=sentiment, summary=name)
    store.take_case(opened["angry-old"].id, "Dana")
    store.set_status(opened["done"].id, "resolved")
    listed = store.desk_cases()
    assert [c.session_id for c in listed] == ["angry-new", "angry-old", "unknown", "calm-new", "calm-old"]
    assert listed[1].held_by == "Dana" and listed[1].status == "assigned"


def test_a_version_1_store_is_migrated_in_place_keeping_every_row(tmp_path):
    from store_v1 import SESSION, write_v1_store

    db = tmp_path / "v1.db"
    write_v1_store(f"sqlite:///{db}")
    store = ConversationStore(db)
    with sqlite3.connect(db) as conn:
        assert conn.execute("select value from qagent_store where key='schema_version'").fetchone() == ("2",)
        columns = {table: {row[1] for row in conn.execute(f"pragma table_info({table})")}
                   for table in ("conversations", "cases", "turns")}
    assert {"held_by", "held_since"} <= columns["conversations"] and "assignee" in columns["cases"]
    assert "author" in columns["turns"]
    assert [t.text for t in store.turns(SESSION)] == ["where is my card?", "I want to speak to a person please",
                                                      "Hello, I'm on it"]
    [case] = store.cases()
    assert (case.status, case.assignee, case.held_by, case.sentiment) == ("open", None, None, "negative")
    assert case.slots == {"card": {"text": "my card", "value": "debit"}}
    assert store.pending_person_replies(SESSION) == ["Hello, I'm on it"]
    assert store.take_case(case.id, "Dana").held_by == "Dana"  # the new columns work on old rows
    assistant, _ = make([], store=ConversationStore(db))  # opening a migrated store again changes nothing
    assert assistant.respond("still there?", SESSION).text == assistant.HELD_NOTICE


def test_a_store_from_a_newer_qagent_is_refused(tmp_path):
    db = tmp_path / "a.db"
    ConversationStore(db)
    with sqlite3.connect(db) as conn:
        conn.execute("update qagent_store set value='3' where key='schema_version'")
    with pytest.raises(StoreError, match="has store schema 3; this qagent reads 2"):
        ConversationStore(db)
