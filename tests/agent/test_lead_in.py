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


@pytest.mark.parametrize("sentence", [
    "I understand how frustrating that is.", "Thanks for letting me know.", "I can help with that.",
    "I'm so sorry your card was declined.", "That sounds like a nightmare.", "That must be frustrating.",
    "Good question about our euro exchange rate.", "Sure thing!", "No worries, let's get that sorted.",
    "I'm sorry about your most recent payment.", "\u201cSorry to hear that.\u201d",
])
def test_acknowledgement_and_empathy_pass(sentence):
    assert check_lead_in(sentence, SOURCES, "My card payment was declined") == ()
    assert acceptable_so_far(sentence)


def test_the_prompt_examples_pass():
    for user, reply in EXAMPLES:
        assert check_lead_in(reply, "", user) == (), reply


@pytest.mark.parametrize("sentence, why", [
    ("That's not possible in most countries.", "not an acknowledgement"),
    ("That's not possible in most countries.", "possibility ('not possible')"),
    ("That's not possible in most countries.", "generalisation ('most')"),
    ("That's not possible in most countries.", "law and policy ('countries')"),
    ("The card is a Mastercard.", "not an acknowledgement (opens with 'the card is')"),
    ("It can vary depending on the market.", "not an acknowledgement"),
    ("The capital of Australia is Canberra.", "not an acknowledgement"),
    ("Yes, we do offer some ATM withdrawals.", "the bank's practice ('we do')"),
    ("No worries, we have many options available.", "possibility ('available')"),
    ("Sorry for any misunderstanding, but there is no specific exchange rate for cash.", "possibility"),
    ("Sorry, transfers abroad always need approval by law.", "generalisation ('always')"),
    ("I understand, but banks are required to ask for your ID.", "law and policy ('required')"),
    ("Sorry, that is against our policy.", "law and policy ('policy')"),
    ("Let me check if there is any change in the current rates.", "promised action ('let me check')"),
    ("Sorry, this is never refunded.", "generalisation ('never')"),
])
def test_claims_are_refused(sentence, why):
    reasons = check_lead_in(sentence, SOURCES, "My card payment was declined")
    assert any(r.startswith("lead-in makes a claim: ") and why in r for r in reasons), reasons


@pytest.mark.parametrize("partial, ok", [
    ("I", True), ("I'm so sor", True), ("Thanks for", True), ("That sounds", True), ("That's a gr", True),
    ("The", False), ("It can", False), ("That's not", False), ("Sorry, in most", False),
])
def test_a_claim_stops_the_stream_as_soon_as_it_shows(partial, ok):
    assert acceptable_so_far(partial) is ok
