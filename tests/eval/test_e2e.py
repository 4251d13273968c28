"""Scripted conversations: the file we ship, the scoring, the report files."""

from __future__ import annotations

import json

import pytest
from assistant_fakes import GOOD, make

from eval.e2e import (
    DEFAULT_CONVERSATIONS, Conversation, Turn, evaluate_assistant, expand, format_report, load_conversations,
    write_outputs,
)


def test_the_shipped_conversations_cover_every_route_and_intent(data_dir):
    conversations = load_conversations()
    assert len(conversations) >= 150
    routes = {t.route for c in conversations for t in c.turns}
    assert routes == {"answer", "clarify", "handoff", "out_of_scope", "smalltalk", "collect", "confirm"}
    categories = set(json.loads((data_dir / "banking77" / "categories.json").read_text()))
    intents = {t.intent for c in conversations for t in c.turns if t.route == "answer"}
    assert intents == categories
    assert any(len(t.user) == 20_000 for c in conversations for t in c.turns)


def test_expand_pads_to_the_exact_size():
    text = expand("Where is my card? {{REPEAT:20000}}")
    assert len(text) == 20_000 and text.startswith("Where is my card? Where is my card?")
    assert expand("no marker") == "no marker"


@pytest.mark.parametrize("line, message", [
    ("{broken", "not a conversation"),
    ('{"id": "a", "turns": [{"user": "hi", "route": "chat"}]}', "routes must be among"),
    ('{"id": "a", "turns": []}', "routes must be among"),
])
def test_bad_conversation_files_name_the_line(tmp_path, line, message):
    path = tmp_path / "c.jsonl"
    path.write_text('{"id": "ok", "turns": [{"user": "hi", "route": "smalltalk"}]}\n' + line + "\n")
    with pytest.raises(ValueError, match=f"c.jsonl:2: {message}"):
        load_conversations(path)


def test_scores_routes_intents_grounding_and_writes_the_report(tmp_path):
    assistant, _ = make([GOOD, "Delivery costs £9.99."])
    conversations = [
        Conversation("a", (Turn("Where is my card?", "answer", "card_arrival"),
                           Turn("and how long does that take?", "answer", "card_arrival"))),
        Conversation("b", (Turn("hello!", "smalltalk"),)),
        Conversation("c", (Turn("What's the weather today in Paris?", "handoff"),)),
    ]
    report = evaluate_assistant(assistant, conversations, progress=False)
    assert (report["conversations"], report["turns"], report["crashes"]) == (3, 4, 0)
    assert report["route_accuracy"] == 0.75 and report["intent_accuracy"] == 1.0
    assert report["grounded_share"] == 1.0  # the invented fee was replaced by the guard
    assert report["guard_fired_share"] == 0.5
    assert [m["conversation"] for m in report["mistakes"]] == ["c"]
    path = write_outputs(report, tmp_path)
    assert json.loads(path.read_text())["turns"] == 4
    assert (tmp_path / "route_confusion.png").stat().st_size > 1000
    assert "route accuracy   0.750" in format_report(report)


def test_a_crash_is_counted_not_hidden():
    class Broken:
        def reset(self, session):
            pass

        def respond(self, message, session):
            raise RuntimeError("boom")

    report = evaluate_assistant(Broken(), [Conversation("a", (Turn("hi", "smalltalk"),))], progress=False)
    assert report["crashes"] == 1 and report["route_accuracy"] == 0.0
    assert "boom" in report["mistakes"][0]["error"]


@pytest.mark.slow
def test_real_assistant_on_the_first_conversations(base_encoder):
    from agent.assistant import Assistant, AssistantSettings

    assistant = Assistant.load(AssistantSettings(store="none"), encoder=base_encoder)
    report = evaluate_assistant(assistant, load_conversations(DEFAULT_CONVERSATIONS)[:12], progress=False)
    assert report["crashes"] == 0 and report["grounded_share"] == 1.0
    assert report["route_accuracy"] >= 0.6


def test_the_report_counts_lead_ins_shown_and_refused_with_their_reasons():
    assistant, _ = make(["I'm sorry your card hasn't arrived yet.", "Sorry, you can track it in the app.",
                         "Sorry about your 2 cards.", "That's not possible in most countries."], style="lead_in")
    conversations = [Conversation(c, (Turn("Where is my card?", "answer", "card_arrival"),)) for c in "abcd"]
    conversations.append(Conversation("e", (Turn("hello!", "smalltalk"),)))
    report = evaluate_assistant(assistant, conversations, progress=False)
    lead_ins = report["lead_ins"]
    assert (lead_ins["written"], lead_ins["shown"], lead_ins["refused"], lead_ins["refused_as_claim"]) == (4, 1, 3, 1)
    assert lead_ins["reasons"]["lead-in gives advice, facts or questions"] == 1
    assert lead_ins["reasons"]["lead-in contains a number"] == 1
    assert lead_ins["reasons"]["lead-in makes a claim: not an acknowledgement"] == 1
    assert "lead-ins         1 of 4 shown, 1 refused as claims" in format_report(report)


def test_claim_refusals_are_counted_apart():
    from eval.e2e import lead_in_counts

    rows = [{"style": "lead_in", "guard_fired": True,
             "guard_reasons": ["lead-in makes a claim: possibility ('not possible')"]},
            {"style": "lead_in", "guard_fired": True,
             "guard_reasons": ["lead-in makes a claim: generalisation ('usually')",
                               "lead-in gives advice, facts or questions ('usually')"]},
            {"style": "lead_in", "guard_fired": True, "guard_reasons": ["lead-in has 1 words (want 2 to 25)"]},
            {"style": "lead_in", "guard_fired": False, "guard_reasons": []},
            {"style": "draft", "guard_fired": True, "guard_reasons": ["draft is empty or too short"]}]
    counts = lead_in_counts(rows)
    assert (counts["written"], counts["shown"], counts["refused"], counts["refused_as_claim"]) == (4, 1, 3, 2)
    assert counts["claims"] == {"lead-in makes a claim: possibility ('not possible')": 1,
                                "lead-in makes a claim: generalisation ('usually')": 1}
    assert counts["reasons"] == {"lead-in makes a claim: possibility": 1, "lead-in makes a claim: generalisation": 1,
                                 "lead-in gives advice, facts or questions": 1, "lead-in has 1 words": 1}


def test_a_flows_question_after_the_answer_is_not_checked_as_a_fact():
    from agent.assistant import Reply
    from eval.e2e import grounding_problems

    prompt = "\n\nNow, back to your payment: I've noted the amount (£1.00). On what day did it happen (for example \"3 March\")?"
    source = {"id": "a", "title": "Extra charge", "text": "A £1 check is released within 7 days.", "used": True}
    reply = Reply(text="A £1 check is released within 7 days." + prompt, route="answer", reason="r", sources=[source],
                  flow="unrecognised_payment", flow_prompt=prompt)
    assert grounding_problems(reply, "there's an extra £1") == []
    invented = Reply(text="It is released within 3 days." + prompt, route="answer", reason="r", sources=[source],
                     flow_prompt=prompt)
    assert grounding_problems(invented, "there's an extra £1")  # the answer itself is still checked
