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


def test_cases_take_reply_as_handback(tmp_path):
    db, assistant = _db_with_a_case(tmp_path)
    [case] = assistant.store.cases()
    taken = runner.invoke(app, ["cases", "take", str(case.id), "--as", "Dana", "--store", str(db)])
    assert taken.exit_code == 0, taken.output
    assert f"case #{case.id} is assigned to Dana" in taken.output and "handback" in taken.output
    listed = runner.invoke(app, ["cases", "list", "--store", str(db)])
    assert "assigned  Dana (holds)" in listed.output
    [row] = json.loads(runner.invoke(app, ["cases", "list", "--json", "--store", str(db)]).output)
    assert (row["assignee"], row["held_by"]) == ("Dana", "Dana")
    assert assistant.respond("where is my card?", "web-1").text == assistant.HELD_NOTICE  # the assistant is silent

    replied = runner.invoke(app, ["cases", "reply", str(case.id), "Found it: it ships today", "--as", "Dana", "--store", str(db)])
    assert replied.exit_code == 0, replied.output
    shown = runner.invoke(app, ["cases", "show", str(case.id), "--store", str(db)]).output
    assert "assignee: Dana · held by Dana" in shown and "person (Dana)> Found it: it ships today" in shown
    transcript = json.loads(runner.invoke(app, ["cases", "show", str(case.id), "--json", "--store", str(db)]).output)
    assert transcript["assignee"] == "Dana" and transcript["transcript"][-1]["author"] == "Dana"

    back = runner.invoke(app, ["cases", "handback", str(case.id), "--store", str(db)])
    assert back.exit_code == 0 and "stays assigned to Dana" in back.output
    assert json.loads(runner.invoke(app, ["cases", "list", "--json", "--store", str(db)]).output)[0]["held_by"] is None
    out = io.StringIO()
    again = stream_reply(assistant, "where is my card?", "web-1", out, details=False)
    assert again.route == "answer"  # the assistant answers again
    assert out.getvalue().startswith("team> Found it: it ships today\nqagent> ")


def test_take_and_handback_errors_are_one_line(tmp_path):
    db, assistant = _db_with_a_case(tmp_path)
    [case] = assistant.store.cases()
    missing_name = runner.invoke(app, ["cases", "take", str(case.id), "--store", str(db)])
    assert missing_name.exit_code != 0 and "--as" in missing_name.output
    not_held = runner.invoke(app, ["cases", "handback", str(case.id), "--store", str(db)])
    assert not_held.exit_code != 0 and "not held by a person" in not_held.output
    assert runner.invoke(app, ["cases", "take", str(case.id), "--as", "Dana", "--store", str(db)]).exit_code == 0
    other = runner.invoke(app, ["cases", "take", str(case.id), "--as", "Eli", "--store", str(db)])
    assert other.exit_code != 0 and "held by Dana; hand it back first" in other.output
    assert len(other.output.strip().splitlines()) == 1 and "Traceback" not in other.output


def test_chat_prints_nothing_for_the_assistant_while_a_person_holds_the_conversation(tmp_path):
    db, assistant = _db_with_a_case(tmp_path)
    [case] = assistant.store.cases()
    assistant.store.take_case(case.id, "Dana")
    first, second = io.StringIO(), io.StringIO()
    stream_reply(assistant, "are you there?", "web-1", first, details=False)
    assert first.getvalue() == f"qagent> {assistant.HELD_NOTICE}\n"
    assistant.store.reply_to_case(case.id, "Yes, Dana here", person="Dana")
    stream_reply(assistant, "great", "web-1", second, details=False)
    assert second.getvalue() == "team> Yes, Dana here\n"  # the person answers; no empty "qagent>" line


def test_a_case_can_be_cancelled_once(tmp_path):
    db, _ = _db_with_a_case(tmp_path)
    [case] = json.loads(runner.invoke(app, ["cases", "list", "--json", "--store", str(db)]).output)
    done = runner.invoke(app, ["cases", "cancel", str(case["id"]), "--store", str(db)])
    assert done.exit_code == 0 and "cancelled" in done.output
    again = runner.invoke(app, ["cases", "cancel", str(case["id"]), "--store", str(db)])
    assert again.exit_code != 0 and "cannot become cancelled" in again.output and "Traceback" not in again.output
