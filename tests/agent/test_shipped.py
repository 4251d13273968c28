from pathlib import Path

import pytest

from agent.shipped import CHAT_SENTIMENT_MODEL, KNOWLEDGE_BASE, NER_MODEL, NEWS_TOPICS_MODEL, model_path


def test_default_names_the_shipped_model_of_the_task():
    assert model_path("default", "sentiment").parts[-3:] == ("assets", "models", "sentiment")
    assert model_path(None, "ner") == NER_MODEL
    assert model_path("default", "topics") == NEWS_TOPICS_MODEL
    assert model_path("runs/mine", "intents") == Path("runs/mine")
    with pytest.raises(ValueError, match="no shipped model for task 'weather'"):
        model_path("default", "weather")


def test_the_shipped_files_are_there():
    assert (NER_MODEL / "config.json").is_file() or (NER_MODEL / "ensemble.json").is_file()
    assert (CHAT_SENTIMENT_MODEL / "config.json").is_file()
    assert (NEWS_TOPICS_MODEL / "config.json").is_file()
    assert KNOWLEDGE_BASE.is_file()


def test_monitor_and_chat_name_the_other_shipped_models():
    from agent.shipped import NEWS_NER_MODEL, NEWS_SENTIMENT_MODEL

    assert model_path("monitor", "sentiment") == NEWS_SENTIMENT_MODEL
    assert model_path("monitor", "ner") == NEWS_NER_MODEL
    assert model_path("chat", "sentiment") == CHAT_SENTIMENT_MODEL
    assert (NEWS_SENTIMENT_MODEL / "config.json").is_file()
    with pytest.raises(ValueError, match="no shipped 'chat' model for task 'ner'; have default, monitor"):
        model_path("chat", "ner")
