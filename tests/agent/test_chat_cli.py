"""`agent chat` and `agent ask`: options, files, errors and output; real models in the slow tests."""

from __future__ import annotations

import json

import pytest
from assistant_fakes import GOOD, make
from typer.testing import CliRunner

import agent.assistant
from agent.cli import app

runner = CliRunner()


@pytest.fixture()
def fake_assistant(monkeypatch):
    assistant, _ = make([GOOD] * 10)
    monkeypatch.setattr(agent.assistant, "load_assistant", lambda *args, **kwargs: assistant)
    return assistant


def test_ask_prints_the_reply_and_its_route(fake_assistant):
    result = runner.invoke(app, ["ask", "Where is my card?"])
    assert result.exit_code == 0, result.output
    assert GOOD in result.output and "route: answer" in result.output


def test_ask_json_has_every_reply_field(fake_assistant):
    result = runner.invoke(app, ["ask", "Where is my card?", "--json"])
    data = json.loads(result.stdout)
    assert {"text", "route", "reason", "intent", "confidence", "entities", "sentiment", "sources", "timings"} <= set(data)
    assert data["route"] == "answer" and data["intent"] == "card_arrival"


def test_ask_file_answers_each_line_and_reports_bad_ones(fake_assistant, tmp_path):
    path = tmp_path / "messages.jsonl"
    path.write_text('Where is my card?\n\n{"text": "hello!", "id": "m2"}\n{broken\n{"no_text": 1}\n', encoding="utf-8")
    result = runner.invoke(app, ["ask", "--file", str(path)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [line.get("route") for line in lines] == ["answer", "smalltalk", None, None]
    assert lines[1]["id"] == "m2" and lines[0]["line"] == 1
    assert "not valid JSON" in lines[2]["error"] and "no 'text'" in lines[3]["error"]
    assert "answered 2 message(s), 2 line(s) could not be read" in result.output


@pytest.mark.parametrize("args, message", [
    ([], "give a message or --file"),
    (["hi", "--file", "x.txt"], "not both"),
    (["--file", "missing.txt"], "missing.txt not found"),
])
def test_ask_errors_are_one_line(args, message, fake_assistant):
    result = runner.invoke(app, ["ask", *args])
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output


def records(stdout):
    return [json.loads(line) for line in stdout.split("\n") if line.startswith("{")]


def test_ask_file_keeps_unicode_line_separators_inside_a_message(fake_assistant, tmp_path):
    # U+2028, U+2029, U+0085 and a form feed are line breaks to str.splitlines(), not to a JSONL file
    path = tmp_path / "messages.jsonl"
    path.write_text('{"text": "Where is my card?\u2028It was due Monday", "id": "a"}\n'
                    '{"text": "Where is my card?\u0085Still nothing", "id": "b"}\n'
                    'hello!\u2029how are you\x0c today\n'
                    '{"text": "Where is my card?", "id": "d"}\n', encoding="utf-8")
    result = runner.invoke(app, ["ask", "--file", str(path)])
    assert result.exit_code == 0, result.output
    lines = records(result.stdout)
    assert [(r["line"], r.get("id"), "error" in r) for r in lines] == [
        (1, "a", False), (2, "b", False), (3, None, False), (4, "d", False)]
    assert "answered 4 message(s), 0 line(s) could not be read" in result.output
    # and the output is one record per line even for readers that split on Unicode line breaks
    assert len(result.stdout.splitlines()) == 4


def test_ask_file_from_stdin_splits_the_same_way(fake_assistant):
    result = runner.invoke(app, ["ask", "--file", "-"], input='{"text": "Where is my card?\u2028Thanks"}\nhello!\n')
    assert [(r["line"], r["route"]) for r in records(result.stdout)] == [(1, "answer"), (2, "smalltalk")]


def test_ask_file_with_crlf_line_ends(fake_assistant, tmp_path):
    path = tmp_path / "messages.jsonl"
    path.write_bytes(b'{"text": "Where is my card?", "id": "a"}\r\nhello!\r\n')
    result = runner.invoke(app, ["ask", "--file", str(path)])
    lines = records(result.stdout)
    assert [(r["line"], r["route"]) for r in lines] == [(1, "answer"), (2, "smalltalk")]


def test_ask_file_answers_the_lines_around_one_that_is_not_utf8(fake_assistant, tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"\xef\xbb\xbffine line\n\xff\xfe broken\nWhere is my card?\n")  # a BOM, then a bad line
    result = runner.invoke(app, ["ask", "--file", str(path)])
    assert result.exit_code == 0, result.output
    lines = records(result.stdout)
    assert [r["line"] for r in lines] == [1, 2, 3]
    assert "not UTF-8" in lines[1]["error"] and "0xff" in lines[1]["error"] and "route" not in lines[1]
    assert lines[2]["route"] == "answer"
    assert "answered 2 message(s), 1 line(s) could not be read" in result.output


@pytest.mark.parametrize("content", [b"\xff\xfe\x00\x00", "hello\n".encode("utf-16"), b"\xff\n\xfe\n"])
def test_ask_file_that_is_binary_fails_in_one_line(content, fake_assistant, tmp_path):
    path = tmp_path / "bad.bin"
    path.write_bytes(content)
    result = runner.invoke(app, ["ask", "--file", str(path)])
    assert result.exit_code == 1 and "not UTF-8 text" in result.output and "Traceback" not in result.output


def test_chat_streams_replies_and_takes_commands(fake_assistant):
    result = runner.invoke(app, ["chat"], input="Where is my card?\n/details\nhello!\n/reset\n/quit\n")
    assert result.exit_code == 0, result.output
    assert GOOD in result.output
    assert "details on" in result.output and "route: smalltalk" in result.output
    assert "new conversation" in result.output


def test_chat_ends_cleanly_at_end_of_input(fake_assistant):
    result = runner.invoke(app, ["chat"], input="Where is my card?\n")
    assert result.exit_code == 0 and GOOD in result.output


@pytest.mark.slow
def test_real_ask_json_and_file(tmp_path):
    result = runner.invoke(app, ["ask", "How do I change my PIN?", "--json", "--threads", "1"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["route"] == "answer" and data["intent"] == "change_pin" and data["sources"]
    path = tmp_path / "m.txt"
    path.write_text("I want to talk to a person\nthanks!\n", encoding="utf-8")
    result = runner.invoke(app, ["ask", "--file", str(path), "--threads", "1"])
    routes = [json.loads(line)["route"] for line in result.stdout.splitlines() if line.startswith("{")]
    assert routes == ["handoff", "smalltalk"]


def _strict(text):
    return json.loads(text, parse_constant=lambda constant: pytest.fail(f"{constant} is not JSON"))


@pytest.fixture()
def nan_assistant(monkeypatch):
    """The fake assistant whose intent model gives NaN probabilities (a checkpoint with NaN weights)."""
    from agent.nlu import Understanding

    assistant, _ = make([GOOD] * 10)
    nan = float("nan")
    monkeypatch.setattr(assistant.nlu, "understand", lambda message: Understanding(
        message, "card_arrival", nan, (("card_arrival", nan), ("card_linking", nan)), (), "neutral", nan))
    monkeypatch.setattr(agent.assistant, "load_assistant", lambda *args, **kwargs: assistant)
    return assistant


def test_nan_probabilities_are_not_answered(nan_assistant):
    result = runner.invoke(app, ["ask", "Where is my card?", "--json"])
    assert result.exit_code == 0, result.output
    data = _strict(result.stdout)
    assert data["route"] == "out_of_scope" and "NaN" in data["reason"]


def test_ask_json_never_holds_nan(fake_assistant, monkeypatch, tmp_path):
    from agent.assistant import Reply

    nan = float("nan")
    monkeypatch.setattr(fake_assistant, "respond", lambda message, session: Reply(
        "x", "clarify", "why", "card_arrival", nan, timings={"nlu": float("inf")}))
    result = runner.invoke(app, ["ask", "Where is my card?", "--json"])
    assert result.exit_code == 0, result.output
    data = _strict(result.stdout)
    assert data["confidence"] is None and data["timings"] == {"nlu": None}
    path = tmp_path / "m.txt"
    path.write_text("Where is my card?\n", encoding="utf-8")
    result = runner.invoke(app, ["ask", "--file", str(path)])
    lines = [_strict(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert lines[0]["confidence"] is None


def _saved_index(tmp_path):
    import faiss
    import numpy as np

    from retrieval.documents import Document
    from retrieval.index import Index

    vectors = np.eye(2, 4, dtype=np.float32)
    flat = faiss.IndexFlatIP(4)
    flat.add(vectors)
    docs = [Document("a", "A", "Answer A.", ("card_arrival",)), Document("b", "B", "Answer B.", ("change_pin",))]
    return Index(flat, docs, encoder_id="fake").save(tmp_path / "idx")


@pytest.mark.parametrize("command", [["ask", "Where is my card?"], ["chat"]])
def test_a_pinned_index_with_another_digest_refuses_to_start(command, fake_assistant, tmp_path):
    from retrieval.index import index_digest

    index = _saved_index(tmp_path)
    digest = index_digest(index)
    result = runner.invoke(app, [*command, "--index", str(index), "--expect-sha256", digest], input="/quit\n")
    assert result.exit_code == 0, result.output
    wrong = ("0" if digest[0] != "0" else "1") + digest[1:]
    result = runner.invoke(app, [*command, "--index", str(index), "--expect-sha256", wrong], input="/quit\n")
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert "is not the pinned one" in lines[0] and digest in lines[0] and GOOD not in result.output
    result = runner.invoke(app, [*command, "--expect-sha256", digest], input="/quit\n")
    assert result.exit_code == 1 and "--index" in result.output
    result = runner.invoke(app, [*command, "--index", str(index), "--expect-sha256", "xyz"], input="/quit\n")
    assert result.exit_code == 1 and "64 hex digits" in result.output
