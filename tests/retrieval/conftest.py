"""A five-answer knowledge base and its index, built once for the retrieval tests."""

from __future__ import annotations

import pytest

from retrieval.documents import Document
from retrieval.index import Index, build_index

SMALL_KB = [
    Document("card-arrival", "My card has not arrived", "Cards arrive in 3 to 5 working days; track them in Cards.",
             ("card_arrival",)),
    Document("pin-blocked", "My PIN is blocked", "After 3 wrong PIN attempts the PIN is blocked; unblock it in Cards > PIN.",
             ("pin_blocked",)),
    Document("exchange-rate", "What exchange rate do you use?", "We use the interbank rate with a 0.5% markup at weekends.",
             ("exchange_rate",)),
    Document("top-up-card", "How do I top up by card?", "Top up from a debit card in Home > Add money; it is instant.",
             ("top_up_by_card_charge", "topping_up_by_card")),
    Document("close-account", "How do I close my account?", "Withdraw your balance, then go to Profile > Close account.",
             ("terminate_account",)),
]


@pytest.fixture(scope="session")
def small_index(base_encoder) -> Index:
    """The five answers above, embedded by the session encoder (do not mutate)."""
    return build_index(SMALL_KB, base_encoder, source="kb.jsonl")
