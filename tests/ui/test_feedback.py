import json
import threading

from ui.feedback import FeedbackLog, default_feedback_path


def test_ratings_are_appended_as_json_lines_with_the_reply(tmp_path):
    log = FeedbackLog(tmp_path / "sub" / "feedback.jsonl")
    log.record(liked=True, message="Where is my card?", reply={"route": "answer", "text": "On its way."}, session_id="s1", turn=0)
    log.record(liked=False, message="And the fee?", reply={"route": "clarify"}, session_id="s1", turn=1)
    lines = (tmp_path / "sub" / "feedback.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["rating"] for line in lines] == ["up", "down"]
    first = log.read()[0]
    assert first["message"] == "Where is my card?"
    assert first["reply"]["route"] == "answer"
    assert first["session"] == "s1" and first["turn"] == 0
    assert first["at"].endswith("+00:00")


def test_concurrent_sessions_never_interleave_lines(tmp_path):
    log = FeedbackLog(tmp_path / "feedback.jsonl")

    def rate(session):
        for turn in range(40):
            log.record(liked=turn % 2 == 0, message="x" * 500, reply={"text": "y" * 500}, session_id=session, turn=turn)

    threads = [threading.Thread(target=rate, args=(f"s{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    records = log.read()  # every line parses
    assert len(records) == 160
    assert {r["session"] for r in records} == {"s0", "s1", "s2", "s3"}


def test_default_file_lives_under_qagent_home(tmp_path, monkeypatch):
    monkeypatch.setenv("QAGENT_HOME", str(tmp_path))
    assert default_feedback_path() == tmp_path / "feedback.jsonl"
    assert FeedbackLog().read() == []
