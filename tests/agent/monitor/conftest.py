"""Helpers for the monitor tests: a keyword scorer for unit tests (integration tests use the real models)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from agent.monitor.feeds import FeedItem
from agent.monitor.scoring import ItemScore, Sentiment
from agent.monitor.watchlist import Watchlist

NEGATIVE_WORDS = ("plunge", "falls", "slashes", "downgraded", "cut", "misses", "fine", "junk", "losses", "sink")


class KeywordScorer:
    """Negative when the headline holds a negative word, else neutral; mentions from the watch-list."""

    def __init__(self, watchlist: Watchlist) -> None:
        self.watchlist = watchlist
        self.calls: list[int] = []

    def score(self, items: Sequence[FeedItem]) -> list[ItemScore]:
        self.calls.append(len(items))
        out = []
        for item in items:
            negative = any(w in item.title.lower() for w in NEGATIVE_WORDS)
            sentiment = Sentiment.from_probs({"negative": 0.9, "neutral": 0.1} if negative else {"neutral": 0.8, "positive": 0.2})
            out.append(ItemScore(item.id, sentiment, sentiment, mentions=tuple(self.watchlist.find(item.title))))
        return out


@pytest.fixture()
def keyword_scorer():
    return KeywordScorer
