"""eval.retrieval: recall@k counts a hit when the document serves the gold intent."""

from __future__ import annotations

import pytest

from eval.retrieval import recall_at_k
from retrieval.documents import Document
from retrieval.index import build_index

KB = [
    Document("arrival", "My card has not arrived", "Cards arrive in 3 to 5 working days.", ("card_arrival",)),
    Document("pin", "My PIN is blocked", "Unblock your PIN in Cards > PIN after 3 wrong tries.", ("pin_blocked",)),
    Document("rate", "Which exchange rate do you use?", "The interbank rate plus 0.5% at weekends.", ("exchange_rate",)),
]


@pytest.fixture(scope="module")
def index(base_encoder):
    return build_index(KB, base_encoder)


def test_recall_per_setting(index):
    texts = ["where is my new card", "my pin got blocked", "what rate do you convert at", "where is my new card"]
    labels = ["card_arrival", "pin_blocked", "exchange_rate", "exchange_rate"]  # the last one retrieval gets wrong
    report = recall_at_k(index, texts, labels, ks=(1, 3))
    assert report["queries"] == 4 and report["covered_intents"] == 1.0
    assert report["no_intent"] == {"recall@1": 0.75, "recall@3": 1.0}
    assert report["gold_intent"] == {"recall@1": 1.0, "recall@3": 1.0}


def test_uncovered_intents_and_bad_input(index):
    report = recall_at_k(index, ["close my account"], ["terminate_account"])
    assert report["covered_intents"] == 0.0 and report["gold_intent"]["recall@3"] == 0.0
    with pytest.raises(ValueError, match="got 1 labels for 2 queries"):
        recall_at_k(index, ["a", "b"], ["card_arrival"])
