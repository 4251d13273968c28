"""Helpers for the monitor tests: keyword scorers for unit tests (integration tests use the real models)."""

from __future__ import annotations

import pytest

from monitor_fakes import KeywordScorer, TopicScorer


@pytest.fixture()
def keyword_scorer():
    return KeywordScorer


@pytest.fixture()
def topic_scorer():
    return TopicScorer
