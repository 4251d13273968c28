"""Fake scorers for the monitor's unit tests and the web UI's (integration tests use the real models)."""

from __future__ import annotations

from collections.abc import Sequence

from agent.monitor.feeds import FeedItem
from agent.monitor.scoring import ItemScore, Sentiment, Topic
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


class TopicScorer(KeywordScorer):
    """The keyword scorer with a learned topic per headline: ``Financials`` for the sample's surge
    company (its stories are the bank's), ``Markets`` for everything else."""

    def __init__(self, watchlist: Watchlist, surge: str = "Northwind Bank") -> None:
        super().__init__(watchlist)
        self.surge = surge

    def score(self, items: Sequence[FeedItem]) -> list[ItemScore]:
        scores = super().score(items)
        return [ItemScore(s.item_id, s.headline, s.overall, s.body, s.body_sentences, s.mentions,
                          Topic("Financials" if self.surge in item.title else "Markets", 0.875))
                for item, s in zip(items, scores)]
