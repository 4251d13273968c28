import json

import pytest

from agent.flows.spec import SHIPPED_FLOWS, FlowBook, FlowFileError

GOOD = {"flows": {"f": {"intents": ["a"], "done": "case {case_id}",
                        "slots": [{"name": "amount", "type": "amount", "question": "How much?"}]}}}


def _write(tmp_path, data, name="flows.json"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def test_the_shipped_flows_cover_the_cases_a_bank_handles():
    book = FlowBook.load()
    assert set(book.flows) == {"unrecognised_payment", "transfer_problem", "refund", "lost_or_stolen", "atm_wrong_cash"}
    assert book.for_intent("transaction_charged_twice").name == "unrecognised_payment"
    assert book.for_intent("card_arrival") is None and book.for_intent(None) is None
    assert [s.name for s in book.flows["atm_wrong_cash"].slots] == ["amount_requested", "amount_received", "date"]
    assert not book.flows["refund"].slot("date").required
    assert "freeze" in book.flows["lost_or_stolen"].advice.lower()
    assert SHIPPED_FLOWS.suffix == ".yaml"


def test_json_and_yaml_files_read_the_same(tmp_path):
    from_json = FlowBook.load(_write(tmp_path, GOOD))
    yaml_text = ("flows:\n  f:\n    intents: [a]\n    done: case {case_id}\n"
                 "    slots:\n      - {name: amount, type: amount, question: 'How much?'}\n")
    from_yaml = FlowBook.load(_write(tmp_path, yaml_text, "flows.yaml"))
    assert from_json.flows == from_yaml.flows


@pytest.mark.parametrize("change, message", [
    (lambda d: d["flows"]["f"]["slots"][0].update(type="money"), "slot 'amount' has unknown type 'money'"),
    (lambda d: d["flows"]["f"]["slots"][0].pop("question"), "slot 'amount': missing question"),
    (lambda d: d["flows"]["f"].pop("done"), "missing done"),
    (lambda d: d["flows"]["f"].update(done="case {number}"), "done may only use"),
    (lambda d: d["flows"]["f"].update(intents=[]), "names no intents"),
    (lambda d: d["flows"].update(g=dict(d["flows"]["f"])), "intent 'a' starts both 'f' and 'g'"),
    (lambda d: d["flows"]["f"].update(colour="red"), "unknown keys"),
    (lambda d: d["flows"]["f"]["slots"][0].update(colour="red"), "unknown keys"),
    (lambda d: d.update(flows={}), "non-empty 'flows'"),
    (lambda d: d.update(default_currency="pounds"), "three-letter code"),
])
def test_a_broken_flows_file_is_one_line_that_names_the_flow(tmp_path, change, message):
    data = json.loads(json.dumps(GOOD))
    change(data)
    with pytest.raises(FlowFileError, match=message) as caught:
        FlowBook.load(_write(tmp_path, data))
    assert "\n" not in str(caught.value) and "flows.json" in str(caught.value)


def test_unreadable_files_say_what_is_wrong(tmp_path):
    with pytest.raises(FlowFileError, match="not found"):
        FlowBook.load(tmp_path / "missing.yaml")
    (tmp_path / "bin.yaml").write_bytes(b"\x00\xff\xfe")
    with pytest.raises(FlowFileError, match="not UTF-8"):
        FlowBook.load(tmp_path / "bin.yaml")
    with pytest.raises(FlowFileError, match="not valid YAML"):
        FlowBook.load(_write(tmp_path, "flows: [unclosed", "bad.yaml"))
    with pytest.raises(FlowFileError, match="not valid JSON"):
        FlowBook.load(_write(tmp_path, "{", "bad.json"))
    # safe_load: a YAML tag that would build a Python object is refused, never run
    with pytest.raises(FlowFileError):
        FlowBook.load(_write(tmp_path, "flows: !!python/object/apply:os.system ['true']", "evil.yaml"))
