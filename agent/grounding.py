"""The grounding rules: what a drafted reply (or a one-sentence lead-in) may state.

The 135M local model is weak, so nothing it writes reaches the customer unchecked: the
:class:`GroundingGuard` rejects a draft that states a number, amount, time span, fee, URL or phone
number the sources do not, drops a key fact of the answer, loops, leaks role tags, or echoes an
injected instruction. :mod:`agent.compose` (whole drafts) and :mod:`agent.lead_in` (lead-ins) both
check what the model wrote with these rules.

Normalisation (what counts as "the same" fact):
- amounts compare by currency symbol and value: "£5" == "£5.00", "£1,000" == "£1000"; a bare
  number must appear as a number somewhere in the sources ("5" matches "£5" or "5 working days").
- time spans compare by number, unit and "working/business" qualifier: "3 working days" is NOT
  "3 days"; a range "3 to 5 working days" allows "3 working days" and "5 working days".
- number words count only before a unit ("three working days" == "3 working days"); a bare
  "one" is too often a pronoun ("a new one") to check.
- "free"/"no fee"/"no charge" in the draft needs the same kind of wording in the sources.
- numbers in the customer's message are allowed (they may restate their own amount), except when
  the message looks like a prompt injection: then only the sources count.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

MAX_MESSAGE_CHARS = 1000  # a 20,000-character paste must not push the answer out of the context

_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty".split())} | {"thirty": 30, "sixty": 60, "ninety": 90}
_NUM = r"\d[\d,]*(?:\.\d+)?"
_NUM_OR_WORD = rf"(?:{_NUM}|{'|'.join(_WORDS)})"
_AMOUNT = re.compile(rf"([£€$])\s?({_NUM})")
_PERCENT = re.compile(rf"({_NUM})\s?%")
_SPAN = re.compile(rf"\b({_NUM_OR_WORD})(?:\s*(?:to|-|–|or|and)\s*({_NUM_OR_WORD}))?\s+"
                   r"(working\s+|business\s+|calendar\s+)?(minute|hour|day|week|month|year)s?\b", re.I)
_NUMBER = re.compile(rf"(?<![\w.]){_NUM}")
_CLOCK = re.compile(r"\b\d{1,2}:\d{2}\b")
_LIST_MARKER = re.compile(r"^\s*(?:\d{1,2}[.)]|[-*•])\s+", re.M)  # "1. Open the app": not a fact
# App paths ("Cards > Manage card > Freeze"): a one-word top level, then segments that end before
# a lower-case function word, so "... > Virtual card and use it" yields "... > Virtual card".
_PATH_STOP = ("and|or|to|in|on|the|then|if|when|where|is|are|it|you|we|before|after|for|with|from|at|"
              "of|so|by|your|a|an|as|once|until|first|again|now|immediately|instead")
_PATH = re.compile(rf"\b[A-Z][\w'&-]*(?: > [A-Z][\w'&-]*(?: (?!(?:{_PATH_STOP})\b)[\w'&-]+)*)+")
_URL = re.compile(r"\b(?:https?://|www\.)\S+|\b[\w.+-]+@[\w-]+\.[\w.]+", re.I)
_PHONE = re.compile(r"\+?\d[\d ()-]{7,}\d")
_FREE = re.compile(r"\b(?:free|no fees?|no charges?|no cost|fee-free|at no extra cost)\b", re.I)
_ROLE_TAG = re.compile(r"<\|[^|>]*\|>|^\s*(?:system|user|assistant|customer|human|ai|agent)\s*:",
                       re.I | re.M)
_INJECTION = re.compile(
    r"\b(?:ignore|disregard|forget|override)\b.{0,40}\b(?:instructions?|rules?|prompt|above|previous)"
    r"|\b(?:you are now|pretend (?:to be|you)|act as|system prompt|new instructions?|jailbreak)\b",
    re.I | re.S)
# Words a polite reply may add without them being in the sources (overlap check below).
_COURTESY = frozenset(
    "this that with your have will would could should there their they them then than what when where "
    "which about into also just only please thank thanks sorry happy glad help here hope sure course "
    "certainly absolutely understand know need want like more make sure able does doesn don't can't "
    "you're we're it's that's let me get from been some very well great question asking confusion "
    "assist assistance".split())


def _norm_number(raw: str) -> str:
    raw = raw.replace(",", "").lower()
    if raw in _WORDS:
        return str(_WORDS[raw])
    try:
        value = Decimal(raw)
    except InvalidOperation:
        return raw
    return format(value.normalize(), "f") if value == value.to_integral() or "." in raw else raw


def _spans(text: str) -> set[tuple[str, str, str]]:
    found = set()
    for first, last, qualifier, unit in _SPAN.findall(text):
        qual = "working" if qualifier.strip().lower() in ("working", "business") else ""
        for number in filter(None, (first, last)):
            found.add((_norm_number(number), qual, unit.lower()))
    return found


def _facts(text: str) -> dict[str, set[Any]]:
    return {
        "amount": {f"{sym}{_norm_number(num)}" for sym, num in _AMOUNT.findall(text)},
        "percent": {f"{_norm_number(num)}%" for num in _PERCENT.findall(text)},
        "span": _spans(text),
        "number": {_norm_number(num) for num in _NUMBER.findall(text)},
        "clock": set(_CLOCK.findall(text)),
    }


def _squash(text: str) -> str:
    return re.sub(r"\s*>\s*", " > ", re.sub(r"\s+", " ", text)).strip().lower()


def key_facts(answer_text: str) -> list[str]:
    """The facts a reply must keep: every app path, amount, percentage and time span, as written.

    Example: ``key_facts("Tap Cards > Freeze. It costs £5 and takes 3 working days.")`` is
    ``["Cards > Freeze", "£5", "3 working days"]``.
    """
    found = [m.group(0) for rx in (_PATH, _AMOUNT, _PERCENT, _SPAN) for m in rx.finditer(answer_text)]
    return list(dict.fromkeys(found))


def looks_like_injection(message: str) -> bool:
    """True when the message tries to change the assistant's rules ("ignore your instructions...")."""
    return bool(_INJECTION.search(message or ""))


def _loop_reason(draft: str) -> str | None:
    words = re.findall(r"\w+", draft.lower())
    grams = Counter(tuple(words[i:i + 4]) for i in range(len(words) - 3))
    if grams and grams.most_common(1)[0][1] >= 3:
        return f"repetition loop: {' '.join(grams.most_common(1)[0][0])!r} repeated"
    sentences = [s for s in (_squash(s) for s in re.split(r"(?<=[.!?])\s+", draft)) if len(s) > 20]
    if len(sentences) != len(set(sentences)):
        return "repetition loop: a sentence is repeated"
    return None


def _content_stems(text: str) -> set[str]:
    return {w[:5] for w in re.findall(r"[a-z][a-z']{3,}", text.lower()) if w not in _COURTESY}


def _overlap(draft: str, allowed: str) -> float:
    stems = _content_stems(draft)
    return len(stems & _content_stems(allowed)) / len(stems) if stems else 1.0


def _invented(drafted: dict[str, set[Any]], allowed: dict[str, set[Any]]) -> list[str]:
    """One reason per fact of the draft that the allowed text lacks (a bare number only once)."""
    reasons, reported = [], set()
    for kind, label in (("amount", "amount"), ("percent", "percentage"), ("span", "time span"),
                        ("clock", "time"), ("number", "number")):
        for fact in sorted(drafted[kind] - allowed[kind], key=str):
            shown = " ".join(x for x in fact if x) if isinstance(fact, tuple) else fact
            if kind != "number" or not any(fact in r for r in reported):
                reasons.append(f"{label} {shown!r} is not in the sources")
                reported.add(shown)
    return reasons


def _keeps(draft: str, drafted: dict[str, set[Any]], fact: str) -> bool:
    """Numeric facts match by value ("£5" keeps "£5.00"); paths and others as text, spacing aside."""
    found = _facts(fact)
    needed = found["amount"] | found["percent"] | found["span"]
    if needed:
        return needed <= drafted["amount"] | drafted["percent"] | drafted["span"]
    return _squash(fact) in _squash(draft)


@dataclass(frozen=True)
class GuardVerdict:
    """Whether a draft may be shown, and every reason it may not (empty when ``ok``)."""

    ok: bool
    reasons: tuple[str, ...] = ()


@dataclass
class GroundingGuard:
    """Checks a draft reply against the retrieved text, the customer's message and the key facts.

    Attributes:
        min_words: Drafts with fewer words are degenerate.
        echo_words: A run of this many words copied from an injection-like message is rejected.
        min_overlap: Share of the draft's content words (4+ letters, compared on their first 5) that
            must come from the sources or the message; lower means the draft wandered off-topic.
    """

    min_words: int = 4
    echo_words: int = 6
    min_overlap: float = 0.5

    def check(self, draft: str, sources_text: str, customer_message: str = "",
              key_facts: Sequence[str] = ()) -> GuardVerdict:
        """Return ``GuardVerdict(ok, reasons)`` for ``draft``; see the module docstring for the rules."""
        reasons: list[str] = []
        text = (draft or "").strip()
        if len(re.findall(r"\w+", text)) < self.min_words:
            return GuardVerdict(False, ("draft is empty or too short",))
        if _ROLE_TAG.search(text):
            reasons.append("draft contains role tags")
        if loop := _loop_reason(text):
            reasons.append(loop)
        injected = looks_like_injection(customer_message)
        allowed_text = sources_text if injected else f"{sources_text}\n{customer_message}"
        drafted = _facts(_LIST_MARKER.sub("", text))
        reasons += ungrounded(text, allowed_text)
        reasons += [f"key fact {fact!r} is missing" for fact in key_facts if not _keeps(text, drafted, fact)]
        if (share := _overlap(text, allowed_text)) < self.min_overlap:
            reasons.append(f"off-topic: only {share:.0%} of the draft's words come from the sources")
        if injected:
            reasons += self._echo_reasons(text, customer_message, sources_text)
        return GuardVerdict(not reasons, tuple(reasons))

    def _echo_reasons(self, draft: str, message: str, sources: str) -> list[str]:
        said, source = re.findall(r"\w+", message.lower()), " ".join(re.findall(r"\w+", sources.lower()))
        body = " " + " ".join(re.findall(r"\w+", draft.lower())) + " "
        for i in range(len(said) - self.echo_words + 1):
            run = " ".join(said[i:i + self.echo_words])
            if f" {run} " in body and run not in source:
                return [f"echoes the customer's instructions: {run!r}"]
        return []


def ungrounded(text: str, allowed_text: str) -> list[str]:
    """Every number, amount, time span, fee claim, link or phone number in ``text`` that
    ``allowed_text`` does not state, one reason each (empty: all facts are grounded)."""
    reasons = _invented(_facts(_LIST_MARKER.sub("", text)), _facts(allowed_text))
    lowered = _squash(allowed_text)
    for rx, label in ((_URL, "link"), (_PHONE, "phone number")):
        for found in rx.findall(text):
            if _squash(found).rstrip(".,") not in lowered:
                reasons.append(f"{label} {found!r} is not in the sources")
    if _FREE.search(text) and not _FREE.search(allowed_text):
        reasons.append("says something is free but the sources do not")
    return reasons
