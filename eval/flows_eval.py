"""Scripted flow conversations: does the assistant collect the right details and open the right case?

The conversations (``eval/flow_conversations.jsonl``, written by us) walk a customer through a
flow (:mod:`agent.flows`): each turn names its expected route (``collect``, ``confirm``,
``handoff``, ``cancel``, or ``answer`` for a question asked on the way), and each conversation
ends with what it should have produced::

    {"id": "…", "tags": ["spread"], "now": "2026-01-05T10:00:00+00:00",
     "turns": [{"user": "…", "route": "collect", "intent": "card_payment_not_recognised"}, …],
     "expect": {"flow": "unrecognised_payment", "case": true,
                "slots": {"amount": {"amount": "25.40", "currency": "GBP"}, "date": "2026-03-17"}}}

``expect.slots`` are normalised values: amounts as ``{"amount": "25.40", "currency": "GBP"}``,
dates as ``YYYY-MM-DD`` read against the conversation's clock (``now``, by default
:data:`DEFAULT_NOW`, a Wednesday), names as written (compared case-insensitively).

Every conversation runs in its own session with ``assistant.clock`` fixed to its ``now``. Scores:

- route accuracy over all turns (and per expected route), intent accuracy where a turn names one;
- slot precision, recall and F1 on normalised values, over the slots each conversation ends with
  (the case's, read from the store when there is one, else the last reply that carries slots);
- flow completion (conversations that should open a case and did: a reply's ``case_id``, or the
  conversation's case in the store, counted apart when no reply named it), wrong cases (a case where
  none was expected, or for the wrong flow), case correctness (a case exactly when expected, and
  then with the expected flow and every expected slot), per tag and per flow;
- card-number leaks: Luhn-valid numbers (:mod:`agent.cards`) in any reply, and in the stored turns
  and cases of the sessions when the assistant keeps a store (target 0);
- crashes, and the p50/p95 latency of understanding + routing + retrieval.

Run: ``agent eval assistant`` (the flow report is written beside the assistant report).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from agent.cards import mask_cards
from finetune.strict_json import jsonl_lines
from eval.e2e import Turn, percentile, route_problem, share

DEFAULT_FLOW_CONVERSATIONS = Path(__file__).resolve().parent / "flow_conversations.jsonl"
DEFAULT_NOW = datetime(2026, 3, 18, 12, 0, tzinfo=timezone.utc)  # a Wednesday: "last Friday" is the 13th
# The shipped flows and their slots (issue 20); a conversation may only expect these.
FLOW_SLOTS: dict[str, tuple[str, ...]] = {
    "unrecognised_payment": ("amount", "date", "merchant"),
    "transfer_problem": ("amount", "date", "recipient"),
    "refund": ("merchant", "amount", "date"),
    "lost_or_stolen": ("when",),
    "atm_wrong_cash": ("amount_requested", "amount_received", "date"),
}
_AMOUNT_SLOTS = frozenset({"amount", "amount_requested", "amount_received"})
_DATE_SLOTS = frozenset({"date", "when"})
_NAME_SLOTS = frozenset({"merchant", "recipient"})


@dataclass(frozen=True)
class Expectation:
    """What a conversation should end with: the flow, whether a case was opened, the slots."""

    flow: str | None
    case: bool
    slots: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FlowConversation:
    id: str
    turns: tuple[Turn, ...]
    expect: Expectation
    tags: tuple[str, ...] = ()
    now: datetime = DEFAULT_NOW


def load_flow_conversations(path: str | Path = DEFAULT_FLOW_CONVERSATIONS,
                            flows: Mapping[str, Collection[str]] | None = None) -> list[FlowConversation]:
    """Read and check a flow conversations JSONL file (errors name the line).

    Args:
        path: The file.
        flows: Flow name → its slot names that conversations may expect (default :data:`FLOW_SLOTS`).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"flow conversations file {path} not found")
    flows = FLOW_SLOTS if flows is None else flows
    out, seen = [], set()
    for number, line in jsonl_lines(path.read_text(encoding="utf-8")):
        try:
            conversation = _conversation(json.loads(line))
            problem = _problem(conversation, flows)
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError) as exc:
            problem = f"not a flow conversation ({type(exc).__name__}: {exc})"
        if problem is None and conversation.id in seen:
            problem = f"duplicate conversation id {conversation.id!r}"
        if problem is not None:
            raise ValueError(f"{path}:{number}: {problem}")
        seen.add(conversation.id)
        out.append(conversation)
    if not out:
        raise ValueError(f"{path} holds no flow conversations")
    return out


def _conversation(data: dict[str, Any]) -> FlowConversation:
    expect = data["expect"]
    now = datetime.fromisoformat(data["now"]) if data.get("now") else DEFAULT_NOW
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    if not isinstance(expect["case"], bool) or not isinstance(expect.get("slots", {}), dict):
        raise TypeError("expect.case must be true or false and expect.slots an object")
    return FlowConversation(
        id=str(data["id"]), turns=tuple(Turn(t["user"], t["route"], t.get("intent")) for t in data["turns"]),
        expect=Expectation(expect["flow"], expect["case"], dict(expect.get("slots", {}))),
        tags=tuple(data.get("tags", ())), now=now)


def _problem(conversation: FlowConversation, flows: Mapping[str, Collection[str]]) -> str | None:
    """What is wrong with a parsed conversation, or None."""
    turns, expect = conversation.turns, conversation.expect
    if problem := route_problem(turns):
        return problem
    if expect.flow is not None and expect.flow not in flows:
        return f"unknown flow {expect.flow!r}; known: {sorted(flows)}"
    allowed = set(flows.get(expect.flow, ())) if expect.flow is not None else set()
    unknown = sorted(set(expect.slots) - allowed)
    if unknown:
        return f"slots {unknown} are not slots of flow {expect.flow!r} (its slots: {sorted(allowed)})"
    for name, value in expect.slots.items():
        problem = _value_problem(name, value)
        if problem:
            return f"slot {name!r}: {problem}"
    handed_off = any(t.route == "handoff" for t in turns)
    if expect.case and not handed_off:
        return "expect.case is true but no turn routes handoff"
    if not expect.case and handed_off:
        return "a turn routes handoff (which opens a case) but expect.case is false"
    return None


def _value_problem(name: str, value: Any) -> str | None:
    if name in _AMOUNT_SLOTS:
        ok = (isinstance(value, dict) and set(value) == {"amount", "currency"} and isinstance(value["amount"], str)
              and _is_money(value["amount"]) and isinstance(value["currency"], str) and len(value["currency"]) == 3)
        return None if ok else f'an amount must look like {{"amount": "25.40", "currency": "GBP"}}, got {value!r}'
    if name in _DATE_SLOTS:
        try:
            date.fromisoformat(value)
        except (TypeError, ValueError):
            return f"a date must be YYYY-MM-DD, got {value!r}"
        return None
    if name in _NAME_SLOTS:
        return None if isinstance(value, str) and value.strip() else f"a name must be text, got {value!r}"
    return None if value is not None else "a value is needed"  # a slot of a flow passed in: any value


def _is_money(text: str) -> bool:
    whole, _, cents = text.partition(".")
    return whole.isdigit() and len(cents) == 2 and cents.isdigit()


def same_value(predicted: Any, expected: Any) -> bool:
    """Slot values equal: text trimmed and compared case-insensitively, objects field by field."""
    if isinstance(expected, dict):
        return (isinstance(predicted, dict) and set(predicted) == set(expected)
                and all(same_value(predicted[k], v) for k, v in expected.items()))
    if isinstance(expected, str) and isinstance(predicted, str):
        return " ".join(predicted.split()).casefold() == " ".join(expected.split()).casefold()
    return predicted == expected


def slot_values(slots: Mapping[str, Any] | None) -> dict[str, Any]:
    """``{name: {"text": …, "value": …}}`` (a reply's or a case's slots) → ``{name: value}``; a slot
    without a value is not a prediction and is left out."""
    values = {name: s["value"] if isinstance(s, dict) and "value" in s else s for name, s in (slots or {}).items()}
    return {name: value for name, value in values.items() if value is not None}


@contextmanager
def temporary_store(assistant: Any, path: str | Path) -> Iterator[Any]:
    """Give ``assistant`` a fresh SQLite store at ``path`` while the block runs, if it has none,
    so handoffs can open cases; its own store (if any) is used as it is. Yields the store in use."""
    if getattr(assistant, "store", None) is not None:
        yield assistant.store
        return
    from agent.store import ConversationStore

    path = Path(path)
    for old in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        old.unlink(missing_ok=True)  # a case left open by an earlier run would be "found", not opened
    store = ConversationStore(path)
    assistant.store = store
    try:
        yield store
    finally:
        assistant.store = None
        store.close()


def evaluate_flows(assistant: Any, conversations: Sequence[FlowConversation], *,
                   progress: bool = True) -> dict[str, Any]:
    """Run every conversation through ``assistant`` and score it (see the module docstring).

    ``assistant`` needs ``reset(session)`` and ``respond(message, session) -> Reply``; its ``clock``
    is set to each conversation's ``now`` while that conversation runs and put back afterwards.
    Sessions are named ``flows-<run>-<id>`` so a store kept from an earlier run cannot answer for this one.
    """
    from tqdm.auto import tqdm

    run = uuid.uuid4().hex[:8]
    rows: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    missing = object()
    clock = getattr(assistant, "clock", missing)
    start = time.perf_counter()
    try:
        with tqdm(total=sum(len(c.turns) for c in conversations), disable=not progress, unit="turn",
                  desc="flow conversations") as bar:
            for conversation in conversations:
                session = f"flows-{run}-{conversation.id}"
                assistant.clock = lambda now=conversation.now: now
                assistant.reset(session)
                turns, replies = [], []
                for number, turn in enumerate(conversation.turns, start=1):
                    row, reply = _run_turn(assistant, conversation, number, turn, session)
                    turns.append(row)
                    replies.append(reply)
                    bar.update(1)
                rows += turns
                results.append(_score(conversation, session, turns, replies, getattr(assistant, "store", None)))
    finally:
        if clock is missing:
            vars(assistant).pop("clock", None)
        else:
            assistant.clock = clock
    return summarise_flows(results, rows, time.perf_counter() - start)


def _run_turn(assistant: Any, conversation: FlowConversation, number: int, turn: Turn,
              session: str) -> tuple[dict[str, Any], Any]:
    row: dict[str, Any] = {"conversation": conversation.id, "turn": number, "tags": list(conversation.tags),
                           "message": mask_cards(turn.user)[0][:200], "expected_route": turn.route,
                           "expected_intent": turn.intent}
    try:
        reply = assistant.respond(turn.user, session)
    except Exception as exc:  # noqa: BLE001 - a crash is a result to report, not to hide
        row.update(route=None, intent=None, error=f"{type(exc).__name__}: {exc}")
        return row, None
    row.update(route=reply.route, intent=reply.intent, flow=reply.flow, awaiting=reply.awaiting,
               slots=slot_values(reply.slots), case_id=reply.case_id, reason=reply.reason,
               reply=mask_cards(reply.text)[0][:300], timings=dict(reply.timings),
               leaks=_reply_leaks(reply))
    return row, reply


def _score(conversation: FlowConversation, session: str, rows: list[dict[str, Any]], replies: list[Any],
           store: Any) -> dict[str, Any]:
    """One conversation's outcome: what it ended with against what it should have."""
    answered = [r for r in replies if r is not None]
    case_id = next((r.case_id for r in reversed(answered) if r.case_id is not None), None)
    flow = next((r.flow for r in reversed(answered) if r.flow is not None), None)
    slots = next((slot_values(r.slots) for r in reversed(answered) if r.slots), {})
    leaks = [f"reply {row['turn']} {where}" for row in rows for where in row.get("leaks", ())]
    replied_case = case_id is not None
    if store is not None:
        # What the team is given is what counts: the case the reply names, else the conversation's own
        # (a case opened by the store but not named in the reply is still a case).
        cases = [c for c in store.cases() if c.session_id == session]
        stored_case = next((c for c in cases if c.id == case_id), None) if replied_case else (cases or [None])[-1]
        if stored_case is not None:
            case_id, flow, slots = stored_case.id, stored_case.flow, slot_values(stored_case.slots)
        leaks += stored_leaks(store, session)
    expect = conversation.expect
    found = [name for name, value in expect.slots.items() if name in slots and same_value(slots[name], value)]
    created = case_id is not None
    flow_ok = flow == expect.flow
    correct = created == expect.case and (not created or (flow_ok and len(found) == len(expect.slots)))
    return {"conversation": conversation.id, "tags": list(conversation.tags), "session": session,
            "expected": {"flow": expect.flow, "case": expect.case, "slots": expect.slots},
            "predicted": {"flow": flow, "case": created, "case_id": case_id, "case_id_in_reply": replied_case,
                          "slots": slots},
            "slots_found": found, "correct": correct, "flow_correct": flow_ok,
            "wrong_case": created and (not expect.case or not flow_ok),
            "crashes": len(replies) - len(answered), "leaks": leaks}


def card_numbers_in(value: Any) -> int:
    """Luhn-valid card numbers in every piece of text inside ``value`` (nested dicts and lists);
    numbers (timings, scores) are not text and are not read."""
    if isinstance(value, str):
        return mask_cards(value)[1]
    if isinstance(value, Mapping):
        return sum(card_numbers_in(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(card_numbers_in(v) for v in value)
    return 0


def _reply_leaks(reply: Any) -> list[str]:
    parts = {"text": reply.text, "reason": reply.reason, "slots": reply.slots, "entities": reply.entities}
    return [name for name, value in parts.items() if card_numbers_in(value)]


def stored_leaks(store: Any, session: str) -> list[str]:
    """Where a card number stands in the session's stored turns and cases (``store.turns``, ``store.cases``)."""
    places = []
    for turn in store.turns(session):
        for name in ("text", "reply", "reason", "nlu"):
            if card_numbers_in(getattr(turn, name)):
                places.append(f"stored turn {turn.turn_index} {name}")
    for case in store.cases():
        if case.session_id != session:
            continue
        for name in ("slots", "summary", "handoff_reason"):
            if card_numbers_in(getattr(case, name)):
                places.append(f"case {case.id} {name}")
    return places


def summarise_flows(results: list[dict[str, Any]], rows: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    """Scores from the per-conversation results and per-turn rows."""
    replied = [r for r in rows if "error" not in r]
    expected_slots = sum(len(r["expected"]["slots"]) for r in results)
    predicted_slots = sum(len(r["predicted"]["slots"]) for r in results)
    found = sum(len(r["slots_found"]) for r in results)
    precision = found / predicted_slots if predicted_slots else 0.0
    recall = found / expected_slots if expected_slots else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    should_open = [r for r in results if r["expected"]["case"]]
    understand = [sum(r["timings"].get(k, 0.0) for k in ("nlu_s", "route_s", "retrieval_s")) for r in replied]
    by_slot: dict[str, list[bool]] = {}
    for r in results:
        for name in r["expected"]["slots"]:
            by_slot.setdefault(name, []).append(name in r["slots_found"])
    leaks = [{"conversation": r["conversation"], "where": where} for r in results for where in r["leaks"]]
    return {
        "conversations": len(results),
        "turns": len(rows),
        "crashes": len(rows) - len(replied),
        "route_accuracy": share(r.get("route") == r["expected_route"] for r in rows),
        "route_accuracy_by_route": _grouped(rows, lambda r: [r["expected_route"]],
                                            lambda r: r.get("route") == r["expected_route"]),
        "intent_accuracy": share(r.get("intent") == r["expected_intent"] for r in rows if r["expected_intent"]),
        "slots": {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
                  "expected": expected_slots, "predicted": predicted_slots, "found": found,
                  "recall_by_slot": {k: round(sum(v) / len(v), 4) for k, v in sorted(by_slot.items())}},
        "flow_accuracy": share(r["flow_correct"] for r in results),
        "flow_completion": share(r["predicted"]["case"] for r in should_open),
        "cases_expected": len(should_open),
        "cases_opened": sum(r["predicted"]["case"] for r in results),
        "wrong_cases": sum(r["wrong_case"] for r in results),
        "cases_not_named_in_reply": sum(r["predicted"]["case"] and not r["predicted"]["case_id_in_reply"] for r in results),
        "case_correctness": share(r["correct"] for r in results),
        "case_correctness_by_tag": _grouped(results, lambda r: r["tags"], lambda r: r["correct"]),
        "case_correctness_by_flow": _grouped(results, lambda r: [str(r["expected"]["flow"])], lambda r: r["correct"]),
        "card_leaks": len(leaks),
        "card_leak_places": leaks,
        "latency_s": {"understand_route_retrieve": {"p50": percentile(understand, 50),
                                                     "p95": percentile(understand, 95), "n": len(understand)}},
        "seconds": round(seconds, 1),
        "mistakes": [_mistake(r, rows) for r in results if not r["correct"] or r["leaks"] or r["crashes"]
                     or any(t.get("route") != t["expected_route"] for t in rows if t["conversation"] == r["conversation"])],
        "conversation_results": results,
        "turn_results": rows,
    }


def _grouped(items: list[dict[str, Any]], keys: Callable[[dict[str, Any]], list[str]],
             ok: Callable[[dict[str, Any]], bool]) -> dict[str, float]:
    groups: dict[str, list[bool]] = {}
    for item in items:
        for key in keys(item):
            groups.setdefault(key, []).append(bool(ok(item)))
    return {k: round(sum(v) / len(v), 4) for k, v in sorted(groups.items())}


def _mistake(result: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    turns = [{k: r.get(k) for k in ("turn", "message", "expected_route", "route", "flow", "awaiting", "slots",
                                    "case_id", "error")}
             for r in rows if r["conversation"] == result["conversation"]]
    return {**{k: v for k, v in result.items() if k != "session"}, "turns": turns}


def write_flow_outputs(report: dict[str, Any], out: str | Path) -> Path:
    """Write ``flows_report.json`` and ``flows_by_tag.png`` (case correctness per tag and per flow)."""
    from eval.reports import plot_bars, write_report

    out = Path(out)
    path = write_report(out, "flows_report", report)
    bars = {**report["case_correctness_by_tag"], **{f"flow:{k}": v for k, v in report["case_correctness_by_flow"].items()}}
    if bars:
        plot_bars(bars, out / "flows_by_tag.png", ylabel="case correctness",
                  title="Flow conversations: case correct, per tag and per flow")
    return path


def format_flow_report(report: dict[str, Any]) -> str:
    slots, lat = report["slots"], report["latency_s"]["understand_route_retrieve"]
    return "\n".join([
        f"{report['conversations']} flow conversations, {report['turns']} turns, {report['crashes']} crashes, "
        f"{report['seconds']} s",
        f"route accuracy    {report['route_accuracy']:.3f} ("
        + ", ".join(f"{k} {v:.2f}" for k, v in report["route_accuracy_by_route"].items()) + ")",
        f"slots             precision {slots['precision']:.3f}, recall {slots['recall']:.3f}, F1 {slots['f1']:.3f} "
        f"({slots['found']} of {slots['expected']} expected, {slots['predicted']} predicted)",
        f"flow completion   {report['flow_completion']:.3f} ({report['cases_opened']} cases opened, "
        f"{report['cases_expected']} expected, {report['wrong_cases']} wrong, "
        f"{report['cases_not_named_in_reply']} not named in the reply)",
        f"case correctness  {report['case_correctness']:.3f}, flow named right {report['flow_accuracy']:.3f}",
        f"card-number leaks {report['card_leaks']}",
        f"latency p50/p95   understand+route+retrieve {lat['p50']}/{lat['p95']} s",
        "by tag: " + ", ".join(f"{k} {v:.2f}" for k, v in report["case_correctness_by_tag"].items()),
        "by flow: " + ", ".join(f"{k} {v:.2f}" for k, v in report["case_correctness_by_flow"].items()),
    ])
