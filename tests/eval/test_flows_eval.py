"""Flow conversations: the file we ship, the loader's checks, the scoring, leaks, the command."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timezone

import pytest
from assistant_fakes import GOOD, make
from typer.testing import CliRunner

import agent.assistant
from agent.assistant import Reply
from agent.cards import luhn_valid, mask_cards
from agent.cli import app
from agent.store import ConversationStore
from eval.e2e import Turn
from eval.flows_eval import (
    DEFAULT_FLOW_CONVERSATIONS, DEFAULT_NOW, FLOW_SLOTS, Expectation, FlowConversation, evaluate_flows,
    format_flow_report, load_flow_conversations, same_value, temporary_store, write_flow_outputs,
)

GBP = {"amount": "25.40", "currency": "GBP"}
# Required slots of each shipped flow (a refund's date is optional): a confirmed case holds all of them.
REQUIRED = {"unrecognised_payment": {"amount", "date", "merchant"}, "transfer_problem": {"amount", "date", "recipient"},
            "refund": {"merchant", "amount"}, "lost_or_stolen": {"when"},
            "atm_wrong_cash": {"amount_requested", "amount_received", "date"}}
TAGS = {"details_first", "spread", "correction", "cancel", "digression", "card_number", "angry", "mid_conversation",
        "handoff", "no_at_confirm"}


def reply(route, flow=None, slots=None, case_id=None, text="ok", intent=None):
    """A Reply with slots given as ``{name: value}`` (the text is the value, as written)."""
    return Reply(text=text, route=route, reason="scripted", intent=intent, flow=flow, case_id=case_id,
                 slots={k: {"text": str(v), "value": v} for k, v in (slots or {}).items()},
                 timings={"nlu_s": 0.1, "route_s": 0.05, "retrieval_s": 0.05, "compose_s": 3.0})


class Scripted:
    """Answers each message with the reply its script gives; notes the conversation clock it saw.

    With a store it writes every message as it came (no masking) and opens the case a reply names,
    so leaks and stored cases can be seen.
    """

    def __init__(self, script, store=None):
        self.script, self.store = script, store
        self.clock = "the assistant's own clock"
        self.seen: list[tuple[str, datetime]] = []

    def reset(self, session):
        self.seen.append((session, None))

    def respond(self, message, session):
        self.seen.append((message, self.clock()))
        answer = self.script[message]
        if isinstance(answer, Exception):
            raise answer
        if self.store is not None:
            self.store.add_turn(session, "customer", message, route=answer.route, reply=answer.text)
            if answer.case_id is not None:
                case, _ = self.store.open_case(session, reason="asked", sentiment=None, summary=message,
                                               flow=answer.flow, slots=answer.slots)
                answer = replace(answer, case_id=case.id)
        return answer


def conversation(id, turns, flow, case, slots, tags=(), now=DEFAULT_NOW):
    return FlowConversation(id, tuple(Turn(u, r) for u, r in turns), Expectation(flow, case, slots), tuple(tags), now)


def test_the_shipped_file_is_valid_and_covers_every_flow_and_tag():
    conversations = load_flow_conversations()
    assert len(conversations) >= 60
    per_flow = {name: sum(c.expect.flow == name for c in conversations) for name in FLOW_SLOTS}
    assert min(per_flow.values()) >= 8, per_flow
    tags = {tag for c in conversations for tag in c.tags}
    assert tags >= TAGS, TAGS - tags
    assert all(sum(tag in c.tags for c in conversations) >= 4 for tag in TAGS)
    assert {t.route for c in conversations for t in c.turns} >= {"collect", "confirm", "cancel", "handoff", "answer"}
    assert any(c.now != DEFAULT_NOW for c in conversations)  # some dates are read against another clock


def test_the_shipped_file_holds_together():
    for c in load_flow_conversations():
        pasted = sum(mask_cards(t.user)[1] for t in c.turns)
        assert (pasted > 0) == ("card_number" in c.tags), c.id
        routes = [t.route for t in c.turns]
        if "cancel" in c.tags:
            assert routes[-1] == "cancel" and not c.expect.case, c.id
        if routes[-2:] == ["confirm", "handoff"] and "handoff" not in c.tags:  # the customer said yes
            assert set(c.expect.slots) >= REQUIRED[c.expect.flow], c.id
        if "angry" in c.tags:
            assert routes == ["handoff"] and c.expect.case, c.id
        assert all(t.intent for t in c.turns if t.route == "answer"), c.id


@pytest.mark.parametrize("line, message", [
    ("{broken", "not a flow conversation"),
    ('{"id": "b", "turns": [{"user": "hi", "route": "chat"}], "expect": {"flow": null, "case": false}}', "routes must be among"),
    ('{"id": "b", "turns": [{"user": "hi", "route": "collect"}]}', r"not a flow conversation \(KeyError"),
    ('{"id": "b", "turns": [{"user": "hi", "route": "collect"}], "expect": {"flow": "pizza", "case": false}}',
     "unknown flow 'pizza'"),
    ('{"id": "b", "turns": [{"user": "hi", "route": "collect"}], "expect": {"flow": "refund", "case": false, '
     '"slots": {"recipient": "Tom"}}}', r"slots \['recipient'\] are not slots of flow 'refund'"),
    ('{"id": "b", "turns": [{"user": "hi", "route": "collect"}], "expect": {"flow": "refund", "case": false, '
     '"slots": {"amount": {"amount": "25.4", "currency": "GBP"}}}}', "slot 'amount': an amount must look like"),
    ('{"id": "b", "turns": [{"user": "hi", "route": "collect"}], "expect": {"flow": "lost_or_stolen", "case": false, '
     '"slots": {"when": "17/03/2026"}}}', "slot 'when': a date must be YYYY-MM-DD"),
    ('{"id": "b", "turns": [{"user": "hi", "route": "confirm"}], "expect": {"flow": "refund", "case": true}}',
     "expect.case is true but no turn routes handoff"),
    ('{"id": "b", "turns": [{"user": "a person please", "route": "handoff"}], "expect": {"flow": null, "case": false}}',
     r"a turn routes handoff \(which opens a case\) but expect.case is false"),
    ('{"id": "b", "now": "next Tuesday", "turns": [{"user": "hi", "route": "collect"}], '
     '"expect": {"flow": null, "case": false}}', r"not a flow conversation \(ValueError"),
    ('{"id": "ok", "turns": [{"user": "hi", "route": "collect"}], "expect": {"flow": null, "case": false}}',
     "duplicate conversation id 'ok'"),
])
def test_bad_flow_files_name_the_line(tmp_path, line, message):
    path = tmp_path / "f.jsonl"
    path.write_text('{"id": "ok", "turns": [{"user": "hi", "route": "collect"}], "expect": {"flow": null, "case": false}}\n'
                    + line + "\n")
    with pytest.raises(ValueError, match=f"f.jsonl:2: {message}"):
        load_flow_conversations(path)


def test_flows_passed_in_replace_the_shipped_ones(tmp_path):
    path = tmp_path / "f.jsonl"
    path.write_text('{"id": "a", "turns": [{"user": "freeze it", "route": "handoff"}], '
                    '"expect": {"flow": "card_freeze", "case": true, "slots": {"last_four": "1111"}}}\n')
    with pytest.raises(ValueError, match="unknown flow 'card_freeze'"):
        load_flow_conversations(path)
    [loaded] = load_flow_conversations(path, flows={"card_freeze": ["last_four"]})
    assert loaded.expect.slots == {"last_four": "1111"} and loaded.now == DEFAULT_NOW


def test_a_missing_or_empty_file_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_flow_conversations(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(ValueError, match="holds no flow conversations"):
        load_flow_conversations(tmp_path / "empty.jsonl")


@pytest.mark.parametrize("predicted, expected, same", [
    (" tesco ", "Tesco", True), ("John  Smith", "john smith", True), ("Tesco Extra", "Tesco", False),
    ({"amount": "25.40", "currency": "GBP"}, GBP, True), ({"amount": "25.4", "currency": "GBP"}, GBP, False),
    ({"amount": "25.40", "currency": "EUR"}, GBP, False), ("25.40", GBP, False), ("2026-03-17", "2026-03-17", True),
])
def test_slot_values_compare_names_loosely_and_amounts_exactly(predicted, expected, same):
    assert same_value(predicted, expected) is same


def scripted_run():
    """Four conversations whose scores are worked out by hand in the test below."""
    up = "unrecognised_payment"
    full = {"amount": GBP, "date": "2026-03-17", "merchant": "tesco "}
    script = {
        "a1": reply("collect", up, {"amount": GBP}), "a2": reply("confirm", up, full),
        "a3": reply("handoff", up, full, case_id=7),
        "b1": reply("collect", up, {"amount": {"amount": "18.50", "currency": "GBP"}, "merchant": "Deliveroo"}),
        "b2": reply("collect", up),  # should have been cancel; carries no slots, so b1's count
        "c1": reply("handoff", up, {"merchant": "Zara", "amount": {"amount": "32.50", "currency": "GBP"}}, case_id=8),
        "d1": reply("handoff", "lost_or_stolen", case_id=9),
    }
    conversations = [
        conversation("a", [("a1", "collect"), ("a2", "confirm"), ("a3", "handoff")], up, True,
                     {"amount": GBP, "date": "2026-03-17", "merchant": "Tesco"}, tags=["spread"]),
        conversation("b", [("b1", "collect"), ("b2", "cancel")], up, False,
                     {"amount": {"amount": "18.50", "currency": "GBP"}}, tags=["cancel", "spread"],
                     now=datetime(2026, 1, 5, 10, tzinfo=timezone.utc)),
        conversation("c", [("c1", "handoff")], "refund", True,
                     {"merchant": "Zara", "amount": {"amount": "32.50", "currency": "GBP"}}, tags=["angry"]),
        conversation("d", [("d1", "collect")], "lost_or_stolen", False, {}, tags=["spread"]),
    ]
    return Scripted(script), conversations


def test_scores_routes_slots_cases_and_tags():
    assistant, conversations = scripted_run()
    report = evaluate_flows(assistant, conversations, progress=False)
    assert (report["conversations"], report["turns"], report["crashes"]) == (4, 7, 0)
    assert report["route_accuracy"] == round(5 / 7, 4)
    assert report["route_accuracy_by_route"] == {"cancel": 0.0, "collect": 0.6667, "confirm": 1.0, "handoff": 1.0}
    # expected 3 + 1 + 2 + 0 slots, predicted 3 + 2 + 2 + 0, found 3 + 1 + 2 + 0
    slots = report["slots"]
    assert (slots["expected"], slots["predicted"], slots["found"]) == (6, 7, 6)
    assert (slots["precision"], slots["recall"], slots["f1"]) == (0.8571, 1.0, 0.9231)
    assert report["flow_completion"] == 1.0 and report["cases_opened"] == 3 and report["cases_expected"] == 2
    assert report["wrong_cases"] == 2  # c: the wrong flow; d: no case was wanted
    assert report["case_correctness"] == 0.5 and report["flow_accuracy"] == 0.75
    assert report["case_correctness_by_tag"] == {"angry": 0.0, "cancel": 1.0, "spread": round(2 / 3, 4)}
    assert report["case_correctness_by_flow"]["refund"] == 0.0
    assert report["latency_s"]["understand_route_retrieve"]["p95"] == 0.2  # compose time is not counted
    assert {m["conversation"] for m in report["mistakes"]} == {"b", "c", "d"}
    assert report["card_leaks"] == 0


def test_each_conversation_runs_on_its_own_clock_and_session():
    assistant, conversations = scripted_run()
    evaluate_flows(assistant, conversations, progress=False)
    clocks = dict(assistant.seen)
    assert clocks["a1"] == DEFAULT_NOW and clocks["b1"] == datetime(2026, 1, 5, 10, tzinfo=timezone.utc)
    sessions = [s for s, now in assistant.seen if now is None]
    assert len(set(sessions)) == 4 and all(s.startswith("flows-") for s in sessions)
    assert assistant.clock == "the assistant's own clock"  # put back afterwards


def test_a_crash_is_counted_and_the_conversation_fails():
    assistant = Scripted({"x1": reply("collect", "refund", {"merchant": "Zara"}), "x2": RuntimeError("boom")})
    report = evaluate_flows(assistant, [conversation("x", [("x1", "collect"), ("x2", "handoff")], "refund", True,
                                                     {"merchant": "Zara"})], progress=False)
    assert report["crashes"] == 1 and report["case_correctness"] == 0.0 and report["flow_completion"] == 0.0
    assert "boom" in report["mistakes"][0]["turns"][1]["error"]


def test_card_numbers_in_replies_are_leaks_and_masked_ones_are_not():
    card = "4111 1111 1111 1111"
    assistant = Scripted({"m1": reply("collect", "lost_or_stolen", text=f"Your card {card} is frozen."),
                          "m2": reply("collect", "lost_or_stolen", text="Your card •••• 1111 is frozen."),
                          "m3": reply("collect", "lost_or_stolen", text="Order 1234 5678 9012 3456 is on its way.")})
    assert luhn_valid("4111111111111111") and not luhn_valid("1234567890123456")
    report = evaluate_flows(assistant, [conversation(m, [(m, "collect")], "lost_or_stolen", False, {})
                                        for m in ("m1", "m2", "m3")], progress=False)
    assert report["card_leak_places"] == [{"conversation": "m1", "where": "reply 1 text"}]
    assert card not in json.dumps(report["turn_results"])


def test_card_numbers_in_stored_turns_and_cases_are_leaks(tmp_path):
    store = ConversationStore(tmp_path / "store.db")
    message = "I lost my card 5555-5555-5555-4444 on Monday"
    assistant = Scripted({message: reply("handoff", "lost_or_stolen", {"when": "2026-03-16", "card": "5555555555554444"},
                                         case_id=1)}, store=store)
    report = evaluate_flows(assistant, [conversation("s", [(message, "handoff")], "lost_or_stolen", True,
                                                     {"when": "2026-03-16"})], progress=False)
    places = [leak["where"] for leak in report["card_leak_places"]]
    assert places == ["reply 1 slots", "stored turn 0 text", "case 1 slots", "case 1 summary"]
    assert report["case_correctness"] == 1.0  # the leak is reported apart from the case


def test_the_cases_slots_come_from_the_store(tmp_path):
    class Forgetful(Scripted):
        """Opens the case with every slot, then replies with none of them."""

        def respond(self, message, session):
            answer = super().respond(message, session)
            return replace(answer, slots={})

    assistant = Forgetful({"r1": reply("handoff", "refund", {"merchant": "Zara"}, case_id=1)})
    with temporary_store(assistant, tmp_path / "flows_store.db") as store:
        report = evaluate_flows(assistant, [conversation("r", [("r1", "handoff")], "refund", True,
                                                         {"merchant": "Zara"})], progress=False)
    assert store.cases()[0].flow == "refund"
    assert report["slots"]["found"] == 1 and report["case_correctness"] == 1.0


def test_a_temporary_store_is_fresh_and_taken_back(tmp_path):
    path = tmp_path / "flows_store.db"
    path.write_text("not a database left from a crash")
    assistant = Scripted({})
    assistant.store = None
    with temporary_store(assistant, path) as store:
        assert assistant.store is store and store.cases() == []
    assert assistant.store is None
    own = Scripted({}, store=ConversationStore(tmp_path / "own.db"))
    with temporary_store(own, path) as store:
        assert store is own.store  # an assistant's own store is used as it is


def test_writes_the_report_and_the_plot(tmp_path):
    assistant, conversations = scripted_run()
    report = evaluate_flows(assistant, conversations, progress=False)
    path = write_flow_outputs(report, tmp_path)
    assert json.loads(path.read_text())["conversations"] == 4 and path.name == "flows_report.json"
    assert (tmp_path / "flows_by_tag.png").stat().st_size > 1000
    text = format_flow_report(report)
    assert "case correctness  0.500" in text and "card-number leaks 0" in text
    assert "precision 0.857, recall 1.000, F1 0.923" in text


@pytest.fixture()
def command_files(tmp_path, monkeypatch):
    assistant, _ = make([GOOD] * 10)
    monkeypatch.setattr(agent.assistant, "load_assistant", lambda *args, **kwargs: assistant)
    scripted = tmp_path / "c.jsonl"
    scripted.write_text('{"id": "a", "turns": [{"user": "Where is my card?", "route": "answer", "intent": "card_arrival"}]}\n')
    flows = tmp_path / "f.jsonl"
    flows.write_text('{"id": "f", "turns": [{"user": "I want to speak to a real person", "route": "handoff"}], '
                     '"expect": {"flow": null, "case": true}}\n')
    return assistant, scripted, flows, tmp_path / "out"


def test_eval_assistant_also_runs_the_flow_conversations(command_files):
    assistant, scripted, flows, out = command_files
    result = CliRunner().invoke(app, ["eval", "assistant", "--conversations", str(scripted),
                                      "--flows-conversations", str(flows), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["conversations"] == 1 and data["flows"]["conversations"] == 1
    assert "turn_results" not in data["flows"]
    assert (out / "assistant_report.json").is_file() and (out / "flows_report.json").is_file()
    assert (out / "flows_store.db").is_file() and assistant.store is None  # the store was lent for the run
    text = CliRunner().invoke(app, ["eval", "assistant", "--conversations", str(scripted),
                                    "--flows-conversations", str(flows), "--out", str(out)])
    assert text.exit_code == 0 and "route accuracy   1.000" in text.output and "flow conversations" in text.output


def test_eval_assistant_no_flows_keeps_the_old_report(command_files):
    _, scripted, flows, out = command_files
    result = CliRunner().invoke(app, ["eval", "assistant", "--conversations", str(scripted), "--no-flows",
                                      "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert "flows" not in json.loads(result.stdout) and not (out / "flows_report.json").exists()


def test_eval_assistant_runs_on_a_backend_and_reports_its_calibration(command_files, monkeypatch):
    assistant, scripted, _, out = command_files
    scripted.write_text("".join(
        f'{{"id": "c{i}", "turns": [{{"user": "Where is my card?", "route": "answer", "intent": "card_arrival"}}]}}\n'
        for i in range(6)))
    seen = []

    def load(settings, **kwargs):
        seen.append(settings)
        assistant.calibration_note = "using calibration for aer:shots=64: temperature 0.500"
        return assistant

    monkeypatch.setattr(agent.assistant, "load_assistant", load)
    result = CliRunner().invoke(app, ["eval", "assistant", "--conversations", str(scripted), "--no-flows",
                                      "--backend", "aer:shots=64", "--intents", "my-intents", "--sample", "4",
                                      "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert seen[0].backend == "aer:shots=64" and str(seen[0].intents_dir) == "my-intents"
    assert data["conversations"] == 4 and data["backend"] == "aer:shots=64"
    assert data["calibration"].startswith("using calibration for aer:shots=64")
    again = CliRunner().invoke(app, ["eval", "assistant", "--conversations", str(scripted), "--no-flows",
                                     "--sample", "4", "--out", str(out), "--json"])
    picked = [r["conversation"] for r in json.loads((out / "assistant_report.json").read_text())["turn_results"]]
    assert again.exit_code == 0 and len(picked) == 4 and picked == sorted(picked)  # seeded, in file order


@pytest.mark.parametrize(("args", "message"), [
    (["--backend", "aer:colour=red"], "bad option 'colour=red'"),
    (["--backend", "aer:shots=64,readout=m3"], "give noise= and shots="),
    (["--sample", "0"], "--sample must be >= 1"),
])
def test_eval_assistant_bad_options_are_one_line_before_loading(command_files, monkeypatch, args, message):
    _, scripted, _, out = command_files

    def never(*args, **kwargs):
        raise AssertionError("models loaded before the options were checked")

    monkeypatch.setattr(agent.assistant, "load_assistant", never)
    result = CliRunner().invoke(app, ["eval", "assistant", "--conversations", str(scripted), "--no-flows",
                                      *args, "--out", str(out)])
    assert result.exit_code != 0 and message in result.output and "Traceback" not in result.output


def test_eval_assistant_checks_the_flow_file_before_loading_models(command_files, monkeypatch):
    _, scripted, flows, out = command_files
    flows.write_text('{"id": "f", "turns": [{"user": "hi", "route": "collect"}], "expect": {"flow": "pizza", "case": false}}\n')

    def never(*args, **kwargs):
        raise AssertionError("models loaded before the files were checked")

    monkeypatch.setattr(agent.assistant, "load_assistant", never)
    result = CliRunner().invoke(app, ["eval", "assistant", "--conversations", str(scripted),
                                      "--flows-conversations", str(flows), "--out", str(out)])
    assert result.exit_code == 1 and "f.jsonl:1: unknown flow 'pizza'" in result.output



class Oracle:
    """Replies to each turn of a known conversation exactly as the file expects."""

    def __init__(self, conversations):
        self.conversations = {c.id: (number, c) for number, c in enumerate(conversations, start=1)}
        self.turn: dict[str, int] = {}

    def reset(self, session):
        self.turn[session] = 0

    def respond(self, message, session):
        number, c = self.conversations[session.split("-", 2)[2]]
        i = self.turn[session]
        self.turn[session] += 1
        assert c.turns[i].user == message
        last = i == len(c.turns) - 1
        return reply(c.turns[i].route, c.expect.flow, c.expect.slots if last else None,
                     case_id=number if last and c.expect.case else None, intent=c.turns[i].intent)


def test_an_assistant_that_does_what_the_shipped_file_says_scores_full_marks():
    conversations = load_flow_conversations()
    report = evaluate_flows(Oracle(conversations), conversations, progress=False)
    assert report["route_accuracy"] == report["case_correctness"] == report["flow_completion"] == 1.0
    assert report["slots"]["f1"] == 1.0 and report["wrong_cases"] == 0 and report["intent_accuracy"] == 1.0
    assert report["card_leaks"] == 0 and set(report["case_correctness_by_tag"]) >= TAGS


def test_a_case_in_the_store_counts_even_when_no_reply_names_it(tmp_path):
    class Quiet(Scripted):
        """Opens the case but leaves ``case_id`` out of the reply."""

        def respond(self, message, session):
            return replace(super().respond(message, session), case_id=None)

    assistant = Quiet({"q1": reply("handoff", "refund", {"merchant": "Zara"}, case_id=1)},
                      store=ConversationStore(tmp_path / "store.db"))
    report = evaluate_flows(assistant, [conversation("q", [("q1", "handoff")], "refund", True, {"merchant": "Zara"})],
                            progress=False)
    assert report["flow_completion"] == 1.0 and report["cases_not_named_in_reply"] == 1
    assert "1 not named in the reply" in format_flow_report(report)
