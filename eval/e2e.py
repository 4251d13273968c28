"""Scripted conversations through the whole assistant: routes, intents, grounded facts, latency.

The conversations (``eval/conversations.jsonl``, written by us) give each customer turn its
expected route and, for answers, its BANKING77 intent. Every conversation runs in its own session,
so follow-ups resolve against their own earlier turns. A message ``"text {{REPEAT:20000}}"`` is
expanded to ``text`` repeated up to 20,000 characters (the oversized-input cases).

Scores:
- route accuracy over all turns, and a route confusion matrix (PNG);
- intent accuracy over the turns expected to be answered;
- grounded share: replies whose every number, amount, time span, fee claim, link and phone
  number appears in the sources they cite or the customer's message (target 100 %);
- crashes (target 0) and the grounding guard's firing rate;
- lead-ins (``lead_in`` style): how many the model wrote, how many were shown, and why the others
  were refused (``lead_ins``; claims counted apart);
- latency percentiles: understanding + routing + retrieval, first token, whole reply.

Run: ``agent eval assistant [--limit N] [--llm …] --out DIR``.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agent.grounding import ungrounded
from finetune.strict_json import jsonl_lines
from agent.lead_in_rules import CLAIM
from agent.router import ROUTES

DEFAULT_CONVERSATIONS = Path(__file__).resolve().parent / "conversations.jsonl"
_REPEAT = re.compile(r"\s*\{\{REPEAT:(\d+)\}\}\s*$")


@dataclass(frozen=True)
class Turn:
    user: str
    route: str
    intent: str | None = None


@dataclass(frozen=True)
class Conversation:
    id: str
    turns: tuple[Turn, ...]
    tags: tuple[str, ...] = ()


def expand(message: str) -> str:
    """``"text {{REPEAT:N}}"`` → ``text`` repeated (space-separated) to exactly N characters."""
    match = _REPEAT.search(message)
    if not match:
        return message
    base = message[: match.start()].strip() or "x"
    size = int(match.group(1))
    return ((base + " ") * (size // (len(base) + 1) + 1))[:size]


def load_conversations(path: str | Path = DEFAULT_CONVERSATIONS) -> list[Conversation]:
    """Read and check a conversations JSONL file (clear errors name the line)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"conversations file {path} not found")
    out, seen = [], set()
    for number, line in jsonl_lines(path.read_text(encoding="utf-8")):
        try:
            data = json.loads(line)
            turns = tuple(Turn(expand(t["user"]), t["route"], t.get("intent")) for t in data["turns"])
            conversation = Conversation(str(data["id"]), turns, tuple(data.get("tags", ())))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: not a conversation ({type(exc).__name__}: {exc})") from None
        problem = route_problem(turns)
        if problem:
            raise ValueError(f"{path}:{number}: {problem}")
        if conversation.id in seen:
            raise ValueError(f"{path}:{number}: duplicate conversation id {conversation.id!r}")
        seen.add(conversation.id)
        out.append(conversation)
    if not out:
        raise ValueError(f"{path} holds no conversations")
    return out


def route_problem(turns: Sequence[Turn]) -> str | None:
    """What is wrong with a conversation's expected routes (none, or one not in ``ROUTES``), or None."""
    bad = [t.route for t in turns if t.route not in ROUTES]
    return f"routes must be among {list(ROUTES)}, got {bad or 'no turns'}" if bad or not turns else None


def grounding_problems(reply: Any, message: str) -> list[str]:
    """Facts in an answer reply that neither its used sources nor the message state."""
    if reply.route != "answer":
        return []
    used = [s for s in reply.sources if s.get("used")] or reply.sources
    allowed = "\n".join(f"{s.get('title', '')}\n{s.get('text', '')}" for s in used) + "\n" + message
    text = reply.text
    prompt = getattr(reply, "flow_prompt", "")
    if prompt and text.endswith(prompt):  # a flow's own question after the answer: the customer's values, read back
        text = text[: -len(prompt)]
    return ungrounded(text, allowed)


def evaluate_assistant(assistant: Any, conversations: Sequence[Conversation], *,
                       progress: bool = True, on_turn: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run every conversation through ``assistant`` and score it (see the module docstring)."""
    from tqdm.auto import tqdm

    rows: list[dict[str, Any]] = []
    style = getattr(getattr(assistant, "composer", None), "style", None)  # "lead_in" or "draft" for the real one
    total_turns = sum(len(c.turns) for c in conversations)
    start = time.perf_counter()
    with tqdm(total=total_turns, disable=not progress, unit="turn", desc="conversations") as bar:
        for conversation in conversations:
            session = f"e2e-{conversation.id}"
            assistant.reset(session)
            for number, turn in enumerate(conversation.turns, start=1):
                row: dict[str, Any] = {"conversation": conversation.id, "turn": number, "tags": list(conversation.tags),
                                       "message": turn.user[:200], "expected_route": turn.route,
                                       "expected_intent": turn.intent}
                try:
                    reply = assistant.respond(turn.user, session)
                except Exception as exc:  # noqa: BLE001 - a crash is a result to report, not to hide
                    row.update(route=None, intent=None, error=f"{type(exc).__name__}: {exc}")
                else:
                    problems = grounding_problems(reply, turn.user)
                    row.update(route=reply.route, intent=reply.intent, reason=reply.reason,
                               reply=reply.text[:300], guard_fired=reply.guard_fired,
                               guard_reasons=list(reply.guard_reasons), ungrounded=problems, timings=reply.timings,
                               style=style if reply.route == "answer" else None)
                rows.append(row)
                if on_turn is not None:
                    on_turn(row)
                bar.update(1)
    return summarise(rows, time.perf_counter() - start)


def summarise(rows: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    """Scores and latency percentiles from the per-turn rows."""
    answered = [r for r in rows if r["expected_route"] == "answer" and r["expected_intent"]]
    replied = [r for r in rows if "error" not in r]
    answers = [r for r in replied if r["route"] == "answer"]
    drafted = [r for r in answers if "compose_s" in r["timings"]]

    understand = [r["timings"].get("nlu_s", 0) + r["timings"].get("route_s", 0) + r["timings"].get("retrieval_s", 0)
                  for r in replied]
    first = [r["timings"]["first_token_s"] for r in drafted if "first_token_s" in r["timings"]]
    whole = [r["timings"]["total_s"] for r in drafted]
    by_tag: dict[str, list[bool]] = {}
    for r in rows:
        for tag in r["tags"]:
            by_tag.setdefault(tag, []).append(r.get("route") == r["expected_route"])
    return {
        "conversations": len({r["conversation"] for r in rows}),
        "turns": len(rows),
        "crashes": len(rows) - len(replied),
        "route_accuracy": share(r.get("route") == r["expected_route"] for r in rows),
        "intent_accuracy": share(r.get("intent") == r["expected_intent"] for r in answered),
        "grounded_share": share(not r["ungrounded"] for r in answers),
        "answer_replies": len(answers),
        "guard_fired_share": share(r["guard_fired"] for r in answers),
        "lead_ins": lead_in_counts(answers),
        "route_accuracy_by_tag": {tag: round(sum(v) / len(v), 4) for tag, v in sorted(by_tag.items())},
        "routes": {"expected": dict(Counter(r["expected_route"] for r in rows)),
                   "predicted": dict(Counter(str(r.get("route")) for r in rows))},
        "latency_s": {
            "understand_route_retrieve": {"p50": percentile(understand, 50), "p95": percentile(understand, 95)},
            "first_token": {"p50": percentile(first, 50), "p95": percentile(first, 95), "n": len(first)},
            "whole_reply": {"p50": percentile(whole, 50), "p95": percentile(whole, 95), "n": len(whole)},
        },
        "seconds": round(seconds, 1),
        "mistakes": [r for r in rows if r.get("route") != r["expected_route"]
                     or (r["expected_intent"] and r.get("intent") != r["expected_intent"]) or r.get("ungrounded")],
        "turn_results": rows,
    }


def lead_in_counts(answers: list[dict[str, Any]]) -> dict[str, Any]:
    """How the lead-in check treated the model's sentences (answer replies in the ``lead_in`` style).

    ``written``: answers that opened with a model sentence to check; ``shown``: those that passed;
    ``refused``: replaced by the plain greeting, with how often each kind of reason came up
    (``reasons``, without what they quote: "gives advice ('usually')" and "('call')" count
    together); ``refused_as_claim``: refusals by :mod:`agent.lead_in_rules` (acknowledgement and
    empathy only), with each of its reasons as written (``claims``). A sentence stopped early
    ("The" of "The card is a Mastercard.") may carry other reasons too, such as its word count.
    """
    lead_ins = [r for r in answers if r.get("style") == "lead_in"]
    reasons: Counter[str] = Counter()
    claims: Counter[str] = Counter()
    for row in lead_ins:
        reasons.update({_reason_kind(reason) for reason in row.get("guard_reasons", [])})
        claims.update(reason for reason in row.get("guard_reasons", []) if CLAIM in reason)
    return {"written": len(lead_ins), "shown": sum(not r["guard_fired"] for r in lead_ins),
            "refused": sum(bool(r["guard_fired"]) for r in lead_ins),
            "refused_as_claim": sum(any(CLAIM in reason for reason in r.get("guard_reasons", [])) for r in lead_ins),
            "reasons": dict(reasons.most_common()), "claims": dict(claims.most_common())}


def _reason_kind(reason: str) -> str:
    """A guard reason without what it quotes: "lead-in: number '5' is not …" → "lead-in: number is not …"."""
    reason = re.sub(r"\s*\([^()]*\)\s*$", "", reason)  # "gives advice ('usually')", "has 1 words (want 2 to 25)"
    return re.sub(r"\s+", " ", re.sub(r"'[^']*'|\"[^\"]*\"", "", reason)).strip()


def write_outputs(report: dict[str, Any], out: str | Path) -> Path:
    """Write ``assistant_report.json`` and ``route_confusion.png`` into ``out``; return the JSON path."""
    from eval.metrics import confusion_matrix
    from eval.reports import plot_confusion_matrix, write_report

    out = Path(out)
    path = write_report(out, "assistant_report", report)
    expected = [r["expected_route"] for r in report["turn_results"]]
    predicted = [r.get("route") or "crash" for r in report["turn_results"]]
    labels = list(ROUTES) + (["crash"] if "crash" in predicted else [])
    plot_confusion_matrix(confusion_matrix(expected, predicted, labels), labels, out / "route_confusion.png",
                          title="Assistant routes (rows: expected)")
    return path


def format_report(report: dict[str, Any]) -> str:
    lat = report["latency_s"]
    lines = [
        f"{report['conversations']} conversations, {report['turns']} turns, {report['crashes']} crashes, {report['seconds']} s",
        f"route accuracy   {report['route_accuracy']:.3f}",
        f"intent accuracy  {report['intent_accuracy']:.3f} (turns expected to be answered)",
        f"grounded replies {report['grounded_share']:.3f} of {report['answer_replies']} answers "
        f"(guard replaced {report['guard_fired_share']:.0%} of drafts)",
        f"latency p50/p95  understand+route+retrieve {lat['understand_route_retrieve']['p50']}/{lat['understand_route_retrieve']['p95']} s, "
        f"first token {lat['first_token']['p50']}/{lat['first_token']['p95']} s, "
        f"whole reply {lat['whole_reply']['p50']}/{lat['whole_reply']['p95']} s",
        *([f"lead-ins         {report['lead_ins']['shown']} of {report['lead_ins']['written']} shown, "
           f"{report['lead_ins']['refused_as_claim']} refused as claims"] if report.get("lead_ins", {}).get("written") else []),
        "by tag: " + ", ".join(f"{k} {v:.2f}" for k, v in report["route_accuracy_by_tag"].items()),
    ]
    return "\n".join(lines)


def share(flags: Any) -> float:
    """The share of true flags, rounded to 4 places (0.0 for none)."""
    values = list(flags)
    return round(sum(bool(v) for v in values) / len(values), 4) if values else 0.0


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile rounded to 4 places (None for no values)."""
    return round(float(np.percentile(values, q)), 4) if values else None
