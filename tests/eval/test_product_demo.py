from pathlib import Path

import pytest

from eval.product_demo import DEMO_MESSAGES, ProductDemoConfig, format_summary


def test_config_defaults_and_dict(tmp_path):
    config = ProductDemoConfig(out=str(tmp_path / "demo"))
    assert config.out == tmp_path / "demo" and config.messages == DEMO_MESSAGES
    data = config.to_dict()
    assert data["out"] == str(tmp_path / "demo") and data["messages"] == list(DEMO_MESSAGES)
    assert data["llm"] == "local" and data["n_qubits"] == 4


def test_config_expands_the_home_folder():
    assert ProductDemoConfig(out=Path("~/demo")).out == Path.home() / "demo"


@pytest.mark.parametrize(("changes", "message"), [
    ({"messages": ()}, "give 1 to 10 messages, got 0"),
    ({"messages": ("hi",) * 11}, "give 1 to 10 messages, got 11"),
    ({"messages": ("where is my card?", "  ")}, "every demo message must be non-empty text"),
    ({"llm": " "}, "llm must name a model"),
    ({"epochs": 0}, "epochs must be between 1 and 200, got 0"),
    ({"n_qubits": 1}, "n_qubits must be between 2 and 6"),
    ({"n_circuits": 9}, "n_circuits must be between 1 and 8, got 9"),
    ({"threads": 0}, "threads must be >= 1, got 0"),
])
def test_config_rejects_bad_settings(tmp_path, changes, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ProductDemoConfig(out=tmp_path, **changes)


def fake_summary(out: Path, alerts: bool = True) -> dict:
    """The shape run_product_demo returns, with made-up numbers."""
    alert = {"id": 1, "kind": "company", "key": "Northwind Bank", "start": "2026-01-07T01:45:00Z",
             "end": "2026-01-07T06:13:00Z", "negative_count": 6, "window_count": 9, "share": 0.6667,
             "baseline": 0.2083, "statistic": 3.3857}
    return {
        "out": str(out),
        "assistant": {"llm": "local", "routes": ["answer", "handoff", "out_of_scope"], "replies": [
            {"message": "my card never came", "route": "answer", "reason": "intent card_arrival (0.82)",
             "intent": "card_arrival", "confidence": 0.82, "entities": [{"type": "date", "text": "ten days ago"}],
             "source": {"id": "card-arrival-001", "title": "My card hasn't arrived yet."},
             "text": "Sorry to hear that.  Track it in Cards > Track delivery.", "seconds": 1.2},
            {"message": "mortgage?", "route": "out_of_scope", "reason": "intent classifier abstained (confidence 0.05)",
             "intent": None, "confidence": 0.0, "entities": [], "source": None, "text": "Sorry, not something I do.",
             "seconds": 0.1},
            {"message": "a person please", "route": "handoff", "reason": "the customer asked for a person",
             "intent": None, "confidence": 0.0, "entities": [], "source": None, "text": "Passing you on.", "seconds": 0.1},
        ]},
        "classifier": {"data": "qagent-kb-topics", "labels": ["account", "cards"],
                       "examples": {"train": 447, "validation": 59, "test": 60},
                       "head": {"kind": "quantum", "n_qubits": 4, "depth": 2, "n_circuits": 2, "parameters": 12558,
                                "backend": "exact"},
                       "best_epoch": 6, "val_macro_f1": 0.915, "test_accuracy": 0.9, "test_macro_f1": 0.863,
                       "train_seconds": 21.0, "checkpoint": str(out / "classifier" / "model"),
                       "files": {"report": str(out / "classifier/test/report.json"),
                                 "confusion_matrix": str(out / "classifier/test/confusion_matrix.png")}},
        "monitor": {"feed": str(out / "monitor/news.jsonl"), "watchlist": str(out / "monitor/watchlist.json"),
                    "db": str(out / "monitor/news.db"), "surge_company": "Northwind Bank", "read": 170, "scored": 168,
                    "skipped": 2, "items_per_s": 10.0, "alerts": [alert] if alerts else [],
                    "report": {"plot": str(out / "monitor/report/sentiment.png"),
                               "alerts_csv": str(out / "monitor/report/alerts.csv")}},
        "web_ui": {"command": f"agent serve --monitor-db {out / 'monitor/news.db'}", "url": "http://127.0.0.1:7860"},
        "next_commands": ["agent chat --details", "agent demo quantum"],
        "files": {"summary": str(out / "summary.json")},
        "seconds": {"assistant_load": 34.2, "assistant_replies": 5.5, "classifier": 20.0, "monitor": 13.0,
                    "summary": 0.0, "total": 73.0},
    }


def test_format_summary_shows_each_reply_with_route_reason_intent_entities_source_and_text(tmp_path):
    text = format_summary(fake_summary(tmp_path))
    assert "customer: my card never came" in text
    assert "route:    answer — intent card_arrival (0.82)" in text
    assert "intent:   card_arrival (confidence 0.82)" in text
    assert "entities: date='ten days ago'" in text
    assert "source:   My card hasn't arrived yet. [card-arrival-001]" in text
    assert "Sorry to hear that. Track it in Cards > Track delivery." in text  # whitespace folded
    assert "route:    out_of_scope — intent classifier abstained (confidence 0.05)" in text
    assert "route:    handoff — the customer asked for a person" in text
    assert text.count("source:") == 1 and text.count("intent:   ") == 1  # none printed where there is none


def test_format_summary_shows_the_classifier_alert_files_and_next_steps(tmp_path):
    text = format_summary(fake_summary(tmp_path))
    assert "test accuracy 0.900, macro-F1 0.863" in text
    assert f"model:    {tmp_path / 'classifier' / 'model'}" in text
    assert "ALERT    Northwind Bank: 6 of 9 items negative" in text
    for path in ("summary.json", "report.json", "confusion_matrix.png", "news.db", "sentiment.png", "alerts.csv"):
        assert path in text
    assert f"agent serve --monitor-db {tmp_path / 'monitor/news.db'}" in text and "http://127.0.0.1:7860" in text
    assert "agent demo quantum" in text
    assert text.endswith("Finished in 73 s.")


def test_format_summary_says_when_no_alert_was_raised(tmp_path):
    text = format_summary(fake_summary(tmp_path, alerts=False))
    assert "ALERT" not in text
    assert "no alert raised (expected one for Northwind Bank)" in text
