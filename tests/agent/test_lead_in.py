"""The one-sentence lead-in the small local model writes: what passes and what the guard stops."""

from __future__ import annotations

import pytest

from agent.lead_in import EXAMPLES, acceptable_so_far, check_lead_in, first_sentence, lead_in_messages

SOURCES = "Standard delivery takes 3 to 5 working days. Track it in Cards > Track delivery."


@pytest.mark.parametrize("sentence", ["Sorry to hear that.", "Happy to help you find your new card.",
                                      "I understand you're waiting for your card to arrive."])
def test_acknowledgements_pass(sentence):
    assert check_lead_in(sentence, SOURCES, "Where is my card?") == ()
    assert acceptable_so_far(sentence)


@pytest.mark.parametrize("sentence, reason", [
    ("It takes around 2-3 hours to arrive.", "advice, facts or questions"),
    ("You can find it on our website.", "advice, facts or questions"),
    ("I'm sorry for your loss, but as an AI I don't have access.", "advice, facts or questions"),
    ("Could you tell me more?", "advice, facts or questions"),
    ("We can arrange a delivery for you.", "advice, facts or questions"),
    ("Ok.", "words"),
    ("Your card number 1234 is noted.", "contains a number"),
])
def test_advice_facts_and_oddities_are_stopped(sentence, reason):
    assert any(reason in r for r in check_lead_in(sentence, SOURCES, "Where is my card?"))


def test_first_sentence_waits_for_a_sentence_end():
    assert first_sentence("Sorry to hear") is None
    assert first_sentence("Sorry to hear that. Then more") == "Sorry to hear that."
    assert first_sentence("Happy to help\nnext line") == "Happy to help"


def test_prompt_is_few_shot_and_ends_with_the_customer_message():
    messages = lead_in_messages("x" * 5000)
    assert len(messages) == 2 + 2 * len(EXAMPLES)
    assert messages[-1].type == "human" and len(messages[-1].text) == 1000
    assert lead_in_messages("")[-1].text == "(empty message)"
