"""The Desk tab's handlers on a real conversation store, with the small fake assistant (no models)."""

import asyncio
from datetime import datetime, timedelta, timezone

import gradio as gr
import pytest
from assistant_fakes import GOOD, make

from agent.store import ConversationStore
from ui.desk import COLUMNS, NO_STORE, PICK_FIRST, DeskHandlers, age, person_name

PERSON = "I want to speak to a person please"


def skipped(value) -> bool:
    return value == gr.skip()  # the page keeps what it shows


@pytest.fixture()
def desk(tmp_path):
    """A store with one handed-off conversation (``web-1``), its assistant and the desk's handlers."""
    store = ConversationStore(tmp_path / "a.db")
    assistant, _ = make([GOOD, GOOD], store=store)
    assistant.respond("where is my card?", "web-1")
    assistant.respond(PERSON, "web-1")
    later = lambda: datetime.now(timezone.utc) + timedelta(minutes=3)  # noqa: E731 - the desk looks 3 min later
    return DeskHandlers(store, clock=later), assistant, store.cases()[0].id


def test_the_list_shows_each_case_with_its_age_sentiment_flow_and_reason(desk):
    handlers, assistant, case_id = desk
    assistant.store.open_case("web-2", reason="the customer is upset", sentiment="negative", summary="this is awful",
                              flow="dispute", slots={"amount": {"text": "fifty quid", "value": "50.00 GBP"}})
    rows = handlers.rows()
    assert [r[0] for r in rows] == [case_id + 1, case_id]  # the upset customer first
    assert rows[0][1:] == ["3 min", "negative", "dispute", "nobody yet", "the customer is upset", "this is awful"]
    assert rows[1][3] == "-" and "speak to a person" in rows[1][6]
    table, *_ = handlers.view(None)
    assert table["headers"] == COLUMNS and len(table["data"]) == 2


def test_a_case_shows_its_transcript_intent_slots_and_reason(desk):
    handlers, assistant, case_id = desk
    other, _ = assistant.store.open_case("web-2", reason="a dispute needs a person", sentiment="negative",
                                         summary="charged twice", flow="dispute",
                                         slots={"amount": {"text": "fifty quid", "value": "50.00 GBP"}})
    header, messages, details = handlers.case_view(case_id)
    assert f"Case #{case_id} · open" in header and "the assistant answers the customer" in header
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[0]["content"] == "where is my card?" and messages[1]["content"] == f"**Assistant:** {GOOD}"
    assert "**Handoff reason:** the customer asked for a person" in details
    assert "**Intent at the handoff:** `out_of_scope` (80% confidence)" in details
    assert "**Topic:** `card_arrival` (the last question the assistant answered)" in details
    assert "**Slots:** none collected" in details
    _, _, slots = handlers.case_view(other.id)
    assert "| amount | fifty quid | 50.00 GBP |" in slots and "**Flow:** dispute" in slots


def test_take_reply_hand_back_and_resolve(desk):
    handlers, assistant, case_id = desk
    status, *_ = handlers.take(case_id, "", {})
    assert status == "Type your name first: the customer sees it with your replies."

    status, table, header, messages, details, shown = handlers.take(case_id, " Dana ", {})
    assert status.startswith(f"You hold case #{case_id}")
    assert "**Dana** holds the conversation: the assistant is silent" in header
    assert table["data"][0][4] == "Dana (holds)"
    assert assistant.respond("is anyone there?", "web-1").text == assistant.HELD_NOTICE

    *out, box = handlers.reply(case_id, "Hi, Dana here. Your card shipped today.", "Dana", shown)
    status, _, _, messages, _, shown = out
    assert status == "Sent: the customer sees it in their chat." and box == ""
    assert messages[-1] == {"role": "assistant", "content": "**Team (Dana):** Hi, Dana here. Your card shipped today."}
    assert messages[-2] == {"role": "assistant", "content": f"**Assistant:** {assistant.HELD_NOTICE}"}
    assert assistant.store.pending_person_replies("web-1") == ["Hi, Dana here. Your card shipped today."]

    *out, box = handlers.reply(case_id, "   ", "Dana", shown)
    assert out[0] == "The reply is empty." and skipped(box)  # the box keeps what was typed

    status, *_ = handlers.hand_back(case_id, shown)
    assert status == f"The assistant answers case #{case_id}'s conversation again; the case stays assigned to Dana until resolved."
    assert assistant.respond("where is my card?", "web-1").route == "answer"
    status, *_ = handlers.hand_back(case_id, shown)
    assert "not held by a person" in status

    status, table, header, *_ = handlers.resolve(case_id, shown)
    assert status == f"Case #{case_id} is resolved." and table["data"] == [] and "· resolved" in header


def test_a_reply_without_taking_says_the_assistant_still_answers(desk):
    handlers, _, case_id = desk
    *out, _ = handlers.reply(case_id, "We're on it", "Eli", {})
    assert "The assistant still answers them too; Take the case to answer alone." in out[0]


def test_taking_a_case_someone_else_holds_is_refused_with_a_sentence(desk):
    handlers, _, case_id = desk
    handlers.take(case_id, "Dana", {})
    status, *_ = handlers.take(case_id, "Eli", {})
    assert status == f"Case {case_id} is held by Dana; hand it back first to take it over."


def test_with_a_login_the_user_name_is_who_acts(desk):
    handlers, _, case_id = desk
    request = gr.Request(username="alice")
    assert person_name(request, "Mallory") == "alice" and person_name(None, " Dana  Lee ") == "Dana Lee"
    assert person_name(gr.Request(), "") is None
    handlers.take(case_id, "Mallory", {}, request)
    assert handlers.store.case(case_id).held_by == "alice"


def test_nothing_selected_or_a_missing_case_is_a_sentence(desk):
    handlers, _, _ = desk
    assert handlers.take(None, "Dana", {})[0] == PICK_FIRST
    assert handlers.resolve(99, {})[0] == "No case 99 (see 'agent cases list')."
    _, header, messages, _, _ = handlers.refresh(99, {})
    assert header.startswith("No case 99") and messages == []


def test_refresh_sends_only_what_changed(desk):
    handlers, assistant, case_id = desk
    first = handlers.refresh(case_id, {})
    assert not any(skipped(part) for part in first[:4])
    again = handlers.refresh(case_id, first[-1])
    assert all(skipped(part) for part in again[:4])  # nothing new: the page is left alone
    assistant.respond("hello?", "web-1")
    moved = handlers.refresh(case_id, again[-1])
    assert skipped(moved[0]) and moved[2][-2]["content"] == "hello?"


def test_clicking_a_row_opens_its_case(desk):
    handlers, _, case_id = desk
    row = handlers.rows()[0]
    event = gr.SelectData(None, {"index": [0, 6], "value": row[6], "row_value": row})
    picked, _, header, messages, _, _ = handlers.pick({}, event)
    assert picked == case_id and f"Case #{case_id}" in header and messages


def test_age_reads_like_a_person_would_say_it():
    now = datetime(2026, 1, 2, 12, 0, tzinfo=timezone.utc)
    assert [age((now - timedelta(seconds=s)).isoformat(), now) for s in (5, 200, 7300, 200_000)] == \
        ["5 s", "3 min", "2 h", "2 d"]
    assert age("not a time", now) == "-"


def _page(assistant, folder):
    """The page built as the server builds it: inside an event loop that is closed afterwards."""
    from ui.app import AppConfig, build_app

    async def build():
        return build_app(assistant, AppConfig(feedback_path=folder / "f.jsonl", data_dir=folder))

    return asyncio.run(build())


def test_without_a_store_the_desk_says_why(scripted_assistant, tmp_path):
    app = _page(scripted_assistant, tmp_path)
    texts = [getattr(block, "value", None) for block in app.blocks.values()]
    assert NO_STORE in texts
    assert "--store none" in NO_STORE


def test_with_a_store_the_page_has_a_desk(desk, tmp_path):
    _, assistant, _ = desk
    app = _page(assistant, tmp_path)
    ids = {getattr(block, "elem_id", None) for block in app.blocks.values()}
    assert {"desk-cases", "desk-take", "desk-send", "desk-handback", "desk-resolve", "desk-refresh"} <= ids
    labels = [block.label for block in app.blocks.values() if type(block).__name__ == "Tab"]
    assert labels[:2] == ["Chat", "Desk"]
