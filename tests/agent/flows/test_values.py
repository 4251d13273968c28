from datetime import datetime

import pytest

from agent.flows.values import find_amounts, find_dates, find_value, normalise_amount, normalise_date, normalise_name, shown

NOW = datetime(2026, 3, 18, 12)  # a Wednesday


@pytest.mark.parametrize("text, amount, currency", [
    ("£25.40", "25.40", "GBP"), ("89.99 euros", "89.99", "EUR"), ("EUR 12", "12.00", "EUR"),
    ("$40", "40.00", "USD"), ("25 quid", "25.00", "GBP"), ("1,200.50 GBP", "1200.50", "GBP"),
    ("100 pounds", "100.00", "GBP"), ("12", "12.00", "GBP"),
])
def test_amounts_become_a_number_and_a_currency(text, amount, currency):
    assert normalise_amount(text) == {"amount": amount, "currency": currency}


def test_a_bare_number_takes_the_flows_default_currency_and_zero_is_no_amount():
    assert normalise_amount("12", default_currency="EUR") == {"amount": "12.00", "currency": "EUR"}
    assert normalise_amount("0") is None and normalise_amount("no money") is None


def test_amounts_in_a_sentence_in_order_and_bare_numbers_only_when_asked():
    found = find_amounts("I asked for £100 but only got 60 pounds")
    assert [(f.text, f.value["amount"]) for f in found] == [("£100", "100.00"), ("60 pounds", "60.00")]
    assert find_amounts("it was 42") == []
    assert [f.value["amount"] for f in find_amounts("it was 42", bare=True)] == ["42.00"]
    # digits that belong to a date are not an amount
    assert find_amounts("on 20 March", bare=True) == [] and find_amounts("2 days ago", bare=True) == []


@pytest.mark.parametrize("text, iso", [
    ("yesterday", "2026-03-17"), ("today", "2026-03-18"), ("last Friday", "2026-03-13"),
    ("on the 3rd of March", "2026-03-03"), ("the 3rd", "2026-03-03"), ("the 20th", "2026-02-20"),
    ("on Tuesday", "2026-03-17"), ("Wednesday", "2026-03-18"), ("2 days ago", "2026-03-16"),
    ("12 May", "2025-05-12"), ("12/03", "2026-03-12"), ("2026-03-01", "2026-03-01"),
])
def test_relative_dates_resolve_against_the_conversation_clock_and_never_in_the_future(text, iso):
    assert normalise_date(text, NOW) == iso


def test_dates_in_a_sentence():
    found = find_dates("I paid 89.99 euros last Friday at the station", NOW)
    assert [(f.text, f.value) for f in found] == [("last Friday", "2026-03-13")]
    assert find_dates("no date here at all", NOW) == []


def test_names_are_kept_as_written_without_the_words_around_an_answer():
    assert normalise_name("it was at Tesco.") == "Tesco"
    assert normalise_name("to John Smith") == "John Smith"
    assert normalise_name("Sainsbury's") == "Sainsbury's"
    assert normalise_name("42") is None and normalise_name("   ") is None
    assert find_value("name", "Amazon", NOW, answer=True)[0].value == "Amazon"
    assert find_value("name", "I really could not tell you what the shop was called", NOW, answer=True) == []
    assert find_value("name", "Amazon", NOW, answer=False) == []  # a name is only taken whole as an answer


def test_values_read_back_for_the_customer():
    assert shown("amount", {"amount": "25.40", "currency": "GBP"}) == "£25.40"
    assert shown("amount", {"amount": "12.00", "currency": "CHF"}) == "12.00 CHF"
    assert shown("date", "2026-03-17") == "Tuesday 17 March 2026"
    with pytest.raises(ValueError, match="unknown slot type"):
        find_value("money", "£5", NOW)


@pytest.mark.parametrize("text, names", [
    ("I returned some shoes to ASOS last Friday", ["ASOS"]),
    ("Netflix took £10.99 twice from my account", ["Netflix"]),
    ("My transfer to Tom Baker failed today", ["Tom Baker"]),
    ("I paid at The Post Office", ["Post Office"]),
    ("I meant Starbucks, not Costa", ["Starbucks", "Costa"]),
    ("Also, British Airways were supposed to refund me", ["British Airways"]),
    ("an ATM in Manchester", []),            # "in" names a place, not who was paid
    ("Tell me a joke", []),                  # a capitalised first word is not a name
    ("I sent it on Monday in March", []),
])
def test_names_the_tagger_missed_are_found_after_their_cue_words(text, names):
    from agent.flows.values import find_names

    assert [f.text for f in find_names(text)] == names
