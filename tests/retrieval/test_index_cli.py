"""``agent index build|search`` through the root app: exit codes, output, one-line errors."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from agent.cli import app

runner = CliRunner()

KB_LINES = [
    {"id": "card-arrival", "title": "My card has not arrived", "text": "Cards arrive in 3 to 5 working days.",
     "intents": ["card_arrival"]},
    {"id": "pin-blocked", "title": "My PIN is blocked", "text": "Unblock your PIN in Cards > PIN.", "intents": ["pin_blocked"]},
]


def one_line_error(result, pattern: str) -> None:
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert re.search(pattern, lines[0]), lines[0]


def test_help_lists_build_and_search():
    result = runner.invoke(app, ["index", "--help"])
    assert result.exit_code == 0 and "build" in result.output and "search" in result.output


def test_build_refuses_a_broken_knowledge_base_before_loading_a_model(tmp_path):
    kb = tmp_path / "kb.jsonl"
    kb.write_text(json.dumps(KB_LINES[0]) + "\n{broken\n", encoding="utf-8")
    one_line_error(runner.invoke(app, ["index", "build", str(kb), "--out", str(tmp_path / "idx")]),
                   r"kb\.jsonl:2: not valid JSON")
    one_line_error(runner.invoke(app, ["index", "build", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "idx")]),
                   "does not exist")
    assert not (tmp_path / "idx").exists()


def test_search_refuses_missing_and_corrupted_indexes(tmp_path, small_index):
    one_line_error(runner.invoke(app, ["index", "search", str(tmp_path / "nowhere"), "my card"]),
                   "no index at .*; build one with: agent index build KB --out")
    saved = small_index.save(tmp_path / "idx")
    with (saved / "index.faiss").open("ab") as handle:
        handle.write(b"\0")
    one_line_error(runner.invoke(app, ["index", "search", str(saved), "my card"]),
                   r"index\.faiss does not match its checksum .*rebuild it with: agent index build kb\.jsonl --out")
    one_line_error(runner.invoke(app, ["index", "search", str(saved), "   "]), "query is empty")


def test_digest_prints_the_sha256_that_search_pins(tmp_path, small_index):
    import hashlib

    saved = small_index.save(tmp_path / "idx")
    result = runner.invoke(app, ["index", "digest", str(saved)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == hashlib.sha256((saved / "meta.json").read_bytes()).hexdigest()
    one_line_error(runner.invoke(app, ["index", "search", str(saved), "my card", "--expect-sha256", "0" * 64]),
                   r"is not the pinned one: its meta\.json hashes to " + result.output.strip())
    one_line_error(runner.invoke(app, ["index", "search", str(saved), "my card", "--expect-sha256", "beef"]),
                   "--expect-sha256 must be 64 hex digits")
    with (saved / "docs.jsonl").open("a") as handle:
        handle.write("\n")
    one_line_error(runner.invoke(app, ["index", "digest", str(saved)]), r"docs\.jsonl does not match its checksum")


@pytest.mark.slow
def test_build_then_search_round_trip(tmp_path):
    kb = tmp_path / "kb.jsonl"
    kb.write_text("".join(json.dumps(line) + "\n" for line in KB_LINES), encoding="utf-8")
    out = tmp_path / "idx"
    built = runner.invoke(app, ["index", "build", str(kb), "--out", str(out), "--json"])
    assert built.exit_code == 0, built.output
    summary = json.loads(built.stdout)
    assert summary["chunks"] == 2 and summary["dim"] == 384 and (out / "index.faiss").is_file()
    assert runner.invoke(app, ["index", "digest", str(out)]).output.strip() == summary["sha256"]

    found = runner.invoke(app, ["index", "search", str(out), "my card never came", "-k", "2", "--json",
                                "--expect-sha256", summary["sha256"]])
    assert found.exit_code == 0, found.output
    hits = json.loads(found.stdout)["hits"]
    assert [h["id"] for h in hits] == ["card-arrival", "pin-blocked"] and hits[0]["score"] > hits[1]["score"]

    boosted = runner.invoke(app, ["index", "search", str(out), "my card never came", "--intent", "pin_blocked", "-k", "1"])
    assert boosted.exit_code == 0, boosted.output
    assert "pin-blocked" in boosted.stdout and "[intent]" in boosted.stdout
