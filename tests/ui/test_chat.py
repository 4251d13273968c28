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
