"""Flows inside the assistant: routes, reply fields, cases in the store, restarts, card numbers."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import torch
from assistant_fakes import GOOD, make

from agent.flows import FlowBook, FlowEngine
from agent.nlu import Understanding
from agent.store import ConversationStore
from finetune.models.tagger import Entity

NOW = datetime(2026, 3, 18, 12, tzinfo=timezone.utc)
FLOW_INTENTS = {"charged twice": "transaction_charged_twice", "transfer failed": "failed_transfer",
                "where is my card": "card_arrival"}
COMPANIES = ("Tesco", "Amazon")


class FlowNLU:
    """Intent by phrase; company names tagged wherever they appear."""

    def understand(self, message: str) -> Understanding:
        intent = next((i for p, i in FLOW_INTENTS.items() if p in message.lower()), "out_of_scope")
        entities = tuple(Entity("company_name", c, message.index(c), message.index(c) + len(c), 0.9)
                         for c in COMPANIES if c in message)
        return Understanding(message, intent, 0.95, ((intent, 0.95), ("atm_support", 0.01)), entities,
                             "neutral", 0.9, torch.ones(4))


def flow_assistant(store=None, replies=(GOOD,) * 5):
    assistant, _ = make(list(replies), store=store)
    assistant.nlu = FlowNLU()
    assistant.flows = FlowEngine(FlowBook.load())
    assistant.clock = lambda: NOW
    assistant.index.intents = assistant.index.intents | {"transaction_charged_twice", "failed_transfer"}
    return assistant


def test_a_charge_reported_in_one_message_is_confirmed_and_becomes_a_case(tmp_path):
    store = ConversationStore(tmp_path / "a.db")
    assistant = flow_assistant(store)
    first = assistant.respond("I was charged twice for £25.40 at Tesco yesterday", "c1")
    assert first.route == "confirm" and first.flow == "unrecognised_payment" and first.awaiting is None
    assert first.slots["amount"] == {"text": "£25.40", "value": {"amount": "25.40", "currency": "GBP"}}
    assert first.slots["date"]["value"] == "2026-03-17" and first.slots["merchant"]["value"] == "Tesco"
    done = assistant.respond("yes", "c1")
    assert done.route == "handoff" and done.case_id is not None and f"case {done.case_id}" in done.text
    [case] = store.cases()
    assert case.id == done.case_id and case.flow == "unrecognised_payment" and case.status == "open"
    assert case.slots["merchant"]["value"] == "Tesco" and "£25.40" in case.summary
    fields = done.to_dict()
    assert {"flow", "slots", "awaiting", "case_id"} <= set(fields) and fields["case_id"] == case.id
    # the flow is over: the next message is answered as usual
    assert assistant.respond("where is my card", "c1").route == "answer"


def test_a_restarted_assistant_continues_the_flow_from_the_store(tmp_path):
    db = tmp_path / "a.db"
    first = flow_assistant(ConversationStore(db))
    asked = first.respond("my transfer failed", "t1")
    assert asked.route == "collect" and asked.awaiting == "amount"
    assert first.respond("£200", "t1").awaiting == "date"
    again = flow_assistant(ConversationStore(db))  # a new process on the same database
    step = again.respond("yesterday", "t1")
    assert step.route == "collect" and step.awaiting == "recipient"
    assert step.slots["amount"]["value"]["amount"] == "200.00" and step.slots["date"]["value"] == "2026-03-17"
    assert again.respond("Amazon", "t1").route == "confirm"
    assert again.respond("yes", "t1").case_id is not None


def test_cancel_opens_no_case_and_asking_for_a_person_opens_one_with_the_slots(tmp_path):
    store = ConversationStore(tmp_path / "a.db")
    assistant = flow_assistant(store)
    assistant.respond("my transfer failed", "x")
    assert assistant.respond("never mind", "x").route == "cancel"
    assert store.cases() == []
    assistant.respond("my transfer failed, it was £80", "y")
    handed = assistant.respond("I want to speak to a person", "y")
    assert handed.route == "handoff" and handed.case_id is not None
    [case] = store.cases()
    assert case.flow == "transfer_problem" and case.slots["amount"]["value"]["amount"] == "80.00"


def test_a_question_mid_flow_is_answered_then_the_question_is_asked_again(tmp_path):
    assistant = flow_assistant(ConversationStore(tmp_path / "a.db"))
    assistant.respond("my transfer failed", "d")
    digression = assistant.respond("where is my card", "d")
    assert digression.route == "answer" and digression.intent == "card_arrival"
    assert digression.text.rstrip().endswith("How much did you send?") and digression.awaiting == "amount"
    assert assistant.respond("£15", "d").awaiting == "date"


def test_a_card_number_pasted_mid_flow_is_masked_everywhere(tmp_path):
    db = tmp_path / "a.db"
    assistant = flow_assistant(ConversationStore(db))
    assistant.respond("I was charged twice for £9.99 at Amazon yesterday, my card is 4111 1111 1111 1111", "k")
    done = assistant.respond("yes 4111-1111-1111-1111", "k")
    assert done.case_id is not None
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert not re.search(rb"4111[ -]?1111[ -]?1111[ -]?1111", raw)
    assert "4111 1111" not in done.text


def test_without_a_store_the_customer_is_told_no_case_can_be_opened():
    assistant = flow_assistant(None)
    assistant.respond("I was charged twice for £5 at Tesco yesterday", "n")
    done = assistant.respond("yes", "n")
    assert done.route == "handoff" and done.case_id is None and "--store none" in done.text


def test_flows_off_answers_from_the_knowledge_base():
    assistant = flow_assistant(None)
    assistant.flows = None
    reply = assistant.respond("I was charged twice for £5 at Tesco yesterday", "o")
    assert reply.route == "answer" and reply.flow is None and reply.slots == {}


def test_bad_input_mid_flow_is_asked_again_and_nothing_stored_is_lost(tmp_path):
    store = ConversationStore(tmp_path / "a.db")
    assistant = flow_assistant(store)
    assistant.respond("my transfer failed", "b")
    routes = [assistant.respond(bad, "b").route for bad in ("", b"\xff\xfe\x00binary", "x" * 30_000)]
    assert routes == ["collect", "collect", "handoff"]  # asked again twice, then a person takes it
    assert store.cases()[0].flow == "transfer_problem"
    assistant.respond("   ", "b")
    assert len(store.turns("b")) == 5  # every message kept, the huge one cut to 20,000 characters
    assert max(len(t.text) for t in store.turns("b")) == 20_000
