import io
import json

from typer.testing import CliRunner

from agent.chat_cli import stream_reply
from agent.cli import app
from agent.store import ConversationStore
from assistant_fakes import GOOD, make

runner = CliRunner()
PERSON = "I want to speak to a person please"


def _db_with_a_case(tmp_path):
    db = tmp_path / "a.db"
    assistant, _ = make([GOOD], store=ConversationStore(db))
    assistant.respond("where is my card?", "web-1")
    assistant.respond(PERSON, "web-1")
    assistant.respond("hello", "web-2")
    return db, assistant


def test_cases_list_show_reply_resolve(tmp_path):
    db, assistant = _db_with_a_case(tmp_path)
    listed = runner.invoke(app, ["cases", "list", "--status", "open,assigned", "--json", "--store", str(db)])
    assert listed.exit_code == 0, listed.output
    [case] = json.loads(listed.output)
    assert {"id", "session_id", "status", "flow", "slots"} <= set(case) and case["status"] == "open"

    shown = runner.invoke(app, ["cases", "show", str(case["id"]), "--json", "--store", str(db)])
    assert [t["text"] for t in json.loads(shown.output)["transcript"]] == ["where is my card?", PERSON]
    assert "customer> where is my card?" in runner.invoke(app, ["cases", "show", str(case["id"]), "--store", str(db)]).output

    replied = runner.invoke(app, ["cases", "reply", str(case["id"]), "We've reissued your card", "--store", str(db)])
    assert replied.exit_code == 0 and "assigned" in replied.output
    out = io.StringIO()
    stream_reply(assistant, "thanks", "web-1", out, details=False)
    assert out.getvalue().startswith("team> We've reissued your card\nqagent> ")

    assert runner.invoke(app, ["cases", "resolve", str(case["id"]), "--store", str(db)]).exit_code == 0
    assert json.loads(runner.invoke(app, ["cases", "list", "--status", "open,assigned", "--json", "--store", str(db)]).output) == []


def test_cases_errors_are_one_line(tmp_path):
    db, _ = _db_with_a_case(tmp_path)
    missing = runner.invoke(app, ["cases", "show", "99", "--store", str(db)])
    assert missing.exit_code != 0 and "no case 99" in missing.output and "Traceback" not in missing.output
    bad = runner.invoke(app, ["cases", "list", "--status", "closed", "--store", str(db)])
    assert bad.exit_code != 0 and "status must be among" in bad.output
    junk = tmp_path / "junk.db"
    junk.write_text("not a database " * 200)
    wrong = runner.invoke(app, ["cases", "list", "--store", str(junk)])
    assert wrong.exit_code != 0 and "not a qagent conversation store" in wrong.output
    assert len(wrong.output.strip().splitlines()) == 1
    none = runner.invoke(app, ["cases", "list", "--store", "none"])
    assert none.exit_code != 0 and "--store none" in none.output


def test_conversations_export_and_purge(tmp_path):
    db, _ = _db_with_a_case(tmp_path)
    out = tmp_path / "old.jsonl"
    exported = runner.invoke(app, ["conversations", "export", "--before", "2999-01-01", "--out", str(out), "--store", str(db)])
    assert exported.exit_code == 0, exported.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["session_id"] for r in records) == ["web-1", "web-2"]
    assert runner.invoke(app, ["conversations", "export", "--before", "2000-01-01", "--store", str(db)]).output == ""
    purged = runner.invoke(app, ["conversations", "purge", "--before", "2999-01-01", "--store", str(db)])
    assert "deleted 1 conversation(s); kept 1 with an open case" in purged.output
    bad = runner.invoke(app, ["conversations", "purge", "--before", "yesterday", "--store", str(db)])
    assert bad.exit_code != 0 and "not a date" in bad.output


def test_chat_ask_and_serve_take_store():
    for command in ("chat", "ask", "serve"):
        assert "--store" in runner.invoke(app, [command, "--help"], terminal_width=200).output


def test_a_wrong_store_fails_before_the_models_load(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_text("not a database " * 200)
    result = runner.invoke(app, ["ask", "hello", "--store", str(junk)])
    assert result.exit_code != 0 and "not a qagent conversation store" in result.output
    assert "loading the intent" not in result.output
