import gradio as gr

from ui.chat import ChatHandlers, reply_details, sources_html
from ui.feedback import FeedbackLog


def _handlers(assistant, tmp_path):
    return ChatHandlers(assistant, FeedbackLog(tmp_path / "feedback.jsonl"))


def test_reply_streams_word_by_word_then_fills_the_side_panel(scripted_assistant, tmp_path):
    steps = list(_handlers(scripted_assistant, tmp_path).respond("Hi, this is Anna", [], None, {}))
    shown = [history[-1]["content"] for history, *_ in steps]
    assert shown[0] == "" and shown[1] == "Reply "  # the page shows the reply growing
    assert shown[-1] == "Reply 1 of this conversation."
    history, textbox, session, turns, route, entities, sources = steps[-1]
    assert [m["role"] for m in history] == ["user", "assistant"]
    assert textbox == "" and session  # the box is cleared; a conversation id was made
    assert "`answer`" in route and "`card_arrival` (93% confidence)" in route
    assert entities == {"text": "Hi, this is Anna", "entities": [{"entity": "person_name", "start": 12, "end": 16}]}
    assert "My card hasn&#x27;t arrived yet" in sources and "used for this reply" in sources
    assert turns[1]["message"] == "Hi, this is Anna" and turns[1]["reply"]["route"] == "answer"


def test_a_rejected_draft_is_replaced_by_the_checked_text(scripted_assistant, tmp_path):
    steps = list(_handlers(scripted_assistant, tmp_path).respond("guard me", [], None, {}))
    assert steps[-1][0][-1]["content"] == "Checked answer from the help pages."
    assert "Grounding guard" in steps[-1][4]


def test_a_failing_assistant_gives_a_sentence_not_a_traceback(scripted_assistant, tmp_path):
    steps = list(_handlers(scripted_assistant, tmp_path).respond("boom", [], None, {}))
    text = steps[-1][0][-1]["content"]
    assert text.startswith("Sorry, something went wrong on our side")
    assert "Traceback" not in text


def test_empty_message_changes_nothing(scripted_assistant, tmp_path):
    (step,) = list(_handlers(scripted_assistant, tmp_path).respond("   ", [], None, {}))
    assert all(isinstance(value, type(gr.skip())) for value in step)
    assert scripted_assistant.turns == {}


def test_sessions_keep_their_own_conversation_and_new_conversation_resets_one(scripted_assistant, tmp_path):
    handlers = _handlers(scripted_assistant, tmp_path)
    *_, a1 = handlers.respond("hello", [], None, {})
    *_, b1 = handlers.respond("hello", [], None, {})
    *_, a2 = handlers.respond("again", a1[0], a1[2], a1[3])
    assert a1[2] != b1[2]
    assert a2[0][-1]["content"] == "Reply 2 of this conversation."
    assert b1[0][-1]["content"] == "Reply 1 of this conversation."
    assert len(a2[0]) == 4 and len(a2[3]) == 2
    cleared = handlers.new_conversation(a2[2])
    assert cleared[0] == [] and cleared[2] is None and cleared[3] == {}
    assert scripted_assistant.resets == [a2[2]]
    assert b1[2] in scripted_assistant.turns  # the other session is untouched


def test_thumbs_are_saved_with_the_rated_reply(scripted_assistant, tmp_path):
    handlers = _handlers(scripted_assistant, tmp_path)
    *_, first = handlers.respond("first question", [], None, {})
    *_, second = handlers.respond("second question", first[0], first[2], first[3])
    assert handlers.rate(second[3], second[2], 3, False).startswith("Thanks")
    assert handlers.rate(second[3], second[2], [1], True).startswith("Thanks")
    assert handlers.rate(second[3], second[2], 0, True) == "Only the assistant's replies can be rated."
    saved = FeedbackLog(tmp_path / "feedback.jsonl").read()
    assert [(r["rating"], r["message"], r["turn"]) for r in saved] == [("down", "second question", 1), ("up", "first question", 0)]
    assert saved[0]["reply"]["text"] == "Reply 2 of this conversation."


def test_side_panel_handles_no_intent_bad_offsets_and_html_in_sources():
    reply = {"route": "out_of_scope", "reason": "no banking intent", "intent": None, "confidence": 0.0,
             "entities": [{"type": "date", "start": 3, "end": 99}], "sources": []}
    route, entities, sources = reply_details(reply, "see you")
    assert "`out_of_scope` — no banking intent" in route and "**Intent:** none" in route
    assert entities["entities"] == []  # an offset past the message is dropped, not drawn wrongly
    assert "No knowledge-base sources" in sources
    html = sources_html([{"id": "x", "title": "<script>alert(1)</script>", "score": 0.5, "text": "a & b"}])
    assert "<script>" not in html and "&lt;script&gt;" in html and "a &amp; b" in html


def test_a_failure_names_no_server_folder(tmp_path):
    class MissingModel:
        def stream(self, message, session_id="default"):
            raise FileNotFoundError(2, "No such file or directory", "/srv/qagent/models/intent/model.safetensors")

        def reset(self, session_id):
            pass

    steps = list(_handlers(MissingModel(), tmp_path).respond("hello", [], None, {}))
    text = steps[-1][0][-1]["content"]
    assert "model.safetensors" in text and "/srv" not in text, text


def _store_backed(tmp_path):
    from assistant_fakes import GOOD, make

    from agent.store import ConversationStore

    store = ConversationStore(tmp_path / "a.db")
    assistant, _ = make([GOOD, GOOD], store=store)
    return ChatHandlers(assistant, FeedbackLog(tmp_path / "feedback.jsonl"), store), assistant, store


def test_a_persons_reply_appears_in_the_chat_marked_as_from_the_team(tmp_path):
    handlers, assistant, store = _store_backed(tmp_path)
    page: list = []  # the page's message list, shared by its events
    *_, last = handlers.respond("I want to speak to a person please", page, None, {})
    session = last[2]
    assert handlers.poll(page, session) == gr.skip()  # nothing new
    [case] = store.cases()
    store.take_case(case.id, "Dana")
    store.reply_to_case(case.id, "Hi, I'm Dana. Let me look.", person="Dana")
    shown = handlers.poll(page, session)
    assert shown[-1] == {"role": "assistant", "content": "**Team (Dana):** Hi, I'm Dana. Let me look."}
    assert page == shown and handlers.poll(page, session) == gr.skip()  # shown once

    *_, held = handlers.respond("thanks, where is my card?", page, session, last[3])
    assert held[0][-1] == {"role": "assistant", "content": assistant.HELD_NOTICE}
    assert "a person (Dana) holds this conversation" in held[4]
    *_, silent = handlers.respond("hello?", page, session, held[3])
    assert silent[0][-1] == {"role": "user", "content": "hello?"}  # the assistant says nothing: no empty bubble
    assert len(silent[3]) == len(held[3])  # and there is nothing to rate


def test_replies_written_while_the_customer_types_come_before_their_message(tmp_path):
    handlers, _, store = _store_backed(tmp_path)
    page: list = []
    *_, last = handlers.respond("I want to speak to a person please", page, None, {})
    [case] = store.cases()
    store.reply_to_case(case.id, "Are you still there?")  # an unnamed team member
    steps = handlers.respond("yes", page, last[2], last[3])
    first = next(steps)
    assert [m["content"] for m in first[0][-3:-1]] == ["**Team:** Are you still there?", "yes"]
    store.reply_to_case(case.id, "Great")
    assert handlers.poll(page, last[2]) == gr.skip()  # a reply is being written: it waits for it to finish
    list(steps)
    assert handlers.poll(page, last[2])[-1]["content"] == "**Team:** Great"
    assert handlers.poll([], None) == gr.skip()  # no conversation yet


def test_new_conversation_empties_the_pages_list(scripted_assistant, tmp_path):
    handlers = _handlers(scripted_assistant, tmp_path)
    page: list = []
    *_, last = handlers.respond("hello", page, None, {})
    assert len(page) == 2
    handlers.new_conversation(last[2], page)
    assert page == []
