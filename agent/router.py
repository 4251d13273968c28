"""Deciding what to do with a message: answer, clarify, hand off, refuse, or small talk.

Every :class:`Decision` carries the route and a one-line reason, so behaviour can be explained to
the customer's advisor and asserted in tests. Rules, first match wins:

1. empty or unreadable message → ``clarify``
2. the customer asks for a person → ``handoff``
3. a greeting, thanks or goodbye with nothing else in it → ``smalltalk``
4. strongly negative (the sentiment model) or upset (strong words, "!!", shouting) about money
   or fraud → ``handoff``
5. a short follow-up ("and how long does that take?") the classifier is unsure of → the previous
   turn's intent, ``answer``
6. the classifier abstains (out of scope) → ``out_of_scope``, or ``clarify`` for a vague
   message of a few words ("help", "something is wrong")
7. the two most likely intents are close → ``clarify`` offering both
8. otherwise → ``answer``

A reply to a clarifying question ("the first one", "2", or a message the classifier now puts on
one of the offered intents) answers the chosen intent before any of these rules. Probabilities
that are not numbers (NaN, from a broken model) count as an abstention: never an answer.

and a ``clarify``/``out_of_scope`` after ``max_failures`` such turns in a row becomes ``handoff``.

The default thresholds come from the BANKING77 validation split (``python -m eval.router_thresholds``
rewrites ``agent/assets/router.json``); see that module for how each was chosen.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal

from agent.memory import Topic, looks_like_follow_up
from agent.nlu import OUT_OF_SCOPE, Understanding
from agent.shipped import ROUTER_SETTINGS

Route = Literal["answer", "clarify", "handoff", "out_of_scope", "smalltalk", "collect", "confirm", "cancel"]
# The last three belong to flows (agent.flows): asking for a detail, confirming what was collected,
# and leaving a flow at the customer's word; the rules below pick among the first five.
ROUTES: tuple[str, ...] = ("answer", "clarify", "handoff", "out_of_scope", "smalltalk", "collect", "confirm", "cancel")
DEFAULT_CONFIG_FILE = ROUTER_SETTINGS

# Intents where an upset customer is about to lose money or fears fraud: a person should take over.
MONEY_OR_FRAUD_INTENTS = frozenset(
    "card_payment_not_recognised cash_withdrawal_not_recognised direct_debit_payment_not_recognised "
    "compromised_card lost_or_stolen_card lost_or_stolen_phone transaction_charged_twice "
    "wrong_amount_of_cash_received transfer_not_received_by_recipient request_refund Refund_not_showing_up "
    "extra_charge_on_statement card_swallowed balance_not_updated_after_bank_transfer "
    "balance_not_updated_after_cheque_or_cash_deposit failed_transfer top_up_reverted reverted_card_payment? "
    "declined_card_payment declined_transfer pending_transfer".split())
_FRAUD_WORDS = re.compile(r"\b(?:fraud\w*|scam\w*|stole\w*|stolen|hack\w*|unauthori[sz]ed|theft|phish\w*)\b", re.I)
# A message that starts with thanks or a greeting, which the classifier finds out of scope, is
# small talk even with words the strict pattern lacks ("thanks a lot!", "cheers, that's all I needed").
_OPENER = re.compile(r"^\W*(?:hi+|hello+|hey+|hiya|good\s+(?:morning|afternoon|evening)|thanks?|thank\s+you|thx|ty|"
                     r"cheers|many\s+thanks|much\s+appreciated|bye+|goodbye)\b", re.I)
_DISTRESS = re.compile(
    r"\b(?:furious|outrage\w*|disgust\w*|unacceptable|ridiculous|angry|livid|fuming|freaking out|panic\w*|"
    r"desperate|terrible|awful|worst|scammed|robbed|nobody is helping|do something)\b|[!?]{2,}", re.I)
_MONEY = re.compile(r"[£€$]\s?\d|\b\d[\d,.]*\s?(?:pounds|euros|dollars|gbp|eur|usd)\b|\b(?:my money|savings)\b", re.I)
_SHOUT = re.compile(r"\b[A-Z]{3,}\b")
_HUMAN = re.compile(
    r"\b(?:speak|talk|chat|connect|put)\b.{0,25}\b(?:human|person|someone|somebody|agent|advisor|adviser|"
    r"representative|manager|operator|staff|real people)\b"
    r"|\b(?:real|live|actual)\s+(?:human|person|agent|people)\b|\bhuman\s+(?:agent|being|please)\b"
    r"|\bcall\s+me\b|\b(?:customer|phone)\s+(?:service|support)\s+number\b"
    r"|\b(?:representative|human being|real person|operator|adviser|advisor)\b"
    r"|\bsomeone from (?:your|the) (?:staff|team|bank)\b|\b(?:don'?t|do not) want (?:a|to talk to a|to chat with a) bot\b"
    r"|\bnot a (?:bot|robot|machine)\b", re.I)
_GREETING = re.compile(
    r"\b(?:hi+|hello+|hey+|hiya|howdy|good\s+(?:morning|afternoon|evening|day)|greetings|yo|"
    r"thanks?(?:\s+you)?(?:\s+(?:so|very)\s+much)?|thank\s+you|thx|ty|cheers|much\s+appreciated|"
    r"bye+|goodbye|see\s+you|have\s+a\s+(?:nice|good|great)\s+day|ok(?:ay)?|great|perfect|cool|"
    r"awesome|nice|that'?s\s+(?:all|it|great|helpful)|that\s+helps|brilliant|how\s+are\s+you|"
    r"you'?re\s+(?:great|welcome)|please|there|again|all|folks|team|bot|qagent)\b", re.I)


@dataclass(frozen=True)
class RouterConfig:
    """Thresholds of the routing rules (saved as JSON beside the models).

    Attributes:
        clarify_margin: Ask which of the top two intents is meant when their probabilities are
            closer than this.
        clarify_below: ...and only when the top intent's probability is below this (a confident
            top intent is answered even with a close second).
        handoff_negative: Negative-sentiment probability above which an upset message about
            money or fraud goes to a person.
        follow_up_confidence: A short follow-up whose intent is less certain than this reuses the
            previous turn's intent.
        follow_up_words: Only messages this short can be follow-ups ("and how long does that take?"
            has 7 words; "how much does it cost to send money abroad" is a new question).
        vague_words: An out-of-scope message this short ("help", "something is wrong") gets a
            clarifying question instead of a refusal.
        max_failures: Consecutive clarify/out-of-scope turns after which the next one is handed off.
        source: Where the numbers came from (a command, or "hand-set").
    """

    clarify_margin: float = 0.15
    clarify_below: float = 0.6
    handoff_negative: float = 0.8
    follow_up_confidence: float = 0.7
    follow_up_words: int = 7
    vague_words: int = 3
    max_failures: int = 2
    source: str = "hand-set"

    def __post_init__(self) -> None:
        for name in ("clarify_margin", "clarify_below", "handoff_negative", "follow_up_confidence"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if self.follow_up_words < 1 or self.vague_words < 0:
            raise ValueError(f"follow_up_words must be >= 1 and vague_words >= 0, got {self.follow_up_words}, {self.vague_words}")
        if self.max_failures < 1:
            raise ValueError(f"max_failures must be >= 1, got {self.max_failures}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RouterConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown router settings {unknown}; known: {sorted(known)}")
        return cls(**data)

    @classmethod
    def load(cls, path: str | Path | None = None) -> RouterConfig:
        """Read a router JSON file (default: the shipped ``agent/assets/router.json``, if any)."""
        path = Path(path) if path is not None else DEFAULT_CONFIG_FILE
        if not path.is_file():
            if path == DEFAULT_CONFIG_FILE:
                return cls()
            raise FileNotFoundError(f"router settings file {path} not found")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path} is not valid JSON: {exc}") from None
        return cls.from_dict(data.get("thresholds", data))


@dataclass(frozen=True)
class Decision:
    """The route for one message, why, and which intent(s) it is about."""

    route: Route
    reason: str
    intent: str | None = None
    options: tuple[str, ...] = ()  # for clarify: the intents offered

    def to_dict(self) -> dict[str, Any]:
        return {"route": self.route, "reason": self.reason, "intent": self.intent, "options": list(self.options)}


def readable(message: str) -> bool:
    """Whether a message holds words a person could have typed: not control bytes, keyboard mash
    ("asdfgh", "qwpoeiru zxmcnb"), emoji or digits alone."""
    text = message or ""
    controls = sum(1 for ch in text if unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn") and ch not in "\n\r\t")
    if controls > max(2, len(text) // 10):
        return False
    words = re.findall(r"[^\W\d_]{2,}", text)
    if not words:
        return False
    mashed = [w for w in words if len(w) >= 4 and (not re.search(r"[aeiouyäöüéèàáíóúâêîôû]", w, re.I)
                                                   or re.search(r"[bcdfghjklmnpqrstvwxz]{5,}", w, re.I))]
    return len(mashed) * 2 < len(words)


def distressed(message: str) -> bool:
    """Anger or panic: strong words, "!!"/"??", or shouting (most words in capitals; a merchant
    name such as 'PYPL*GLOBALSVC' or 'PIN' alone is not shouting)."""
    text = message or ""
    words = re.findall(r"[^\W\d_]{3,}", text)
    shouted = _SHOUT.findall(text)
    return bool(_DISTRESS.search(text)) or (len(shouted) >= 3 and len(shouted) * 2 >= len(words))


def is_smalltalk(message: str) -> bool:
    """A greeting, thanks or goodbye with no request in it ("hi!", "thanks, that's all")."""
    rest = _GREETING.sub(" ", message or "")
    return bool(_GREETING.search(message or "")) and not re.findall(r"[^\W\d_]{2,}", rest)


def asks_for_human(message: str) -> bool:
    return bool(_HUMAN.search(message or ""))


def _scores_are_numbers(nlu: Understanding) -> bool:
    """False when a probability is NaN or infinite: every comparison with NaN is False, so a
    threshold rule would let it through as confident."""
    scores = [nlu.confidence, nlu.sentiment_score, *(p for _, p in nlu.alternatives)]
    return all(math.isfinite(float(p)) for p in scores)


class Router:
    """Applies the rules of this module to an :class:`~agent.nlu.Understanding`.

    Args:
        config: Thresholds.
        answerable: Intents the knowledge base has an answer for (None: all).
    """

    def __init__(self, config: RouterConfig | None = None, answerable: set[str] | None = None) -> None:
        self.config = config or RouterConfig()
        self.answerable = answerable

    def decide(self, message: str, nlu: Understanding, *, last_topic: Topic | None = None,
               failures: int = 0, offered: tuple[str, ...] = ()) -> Decision:
        """Route one message.

        Args:
            message: The customer's message as typed.
            nlu: What the models made of it.
            last_topic: The session's previous topic, for follow-ups.
            failures: Clarify/out-of-scope turns in a row just before this one.
            offered: The intents the previous turn's clarifying question offered, if it was one.
        """
        if not _scores_are_numbers(nlu):
            # A broken model (NaN weights or features) says nothing: route as if the classifier
            # abstained, and neither a follow-up nor a reply to a question may turn it into an answer.
            nlu = replace(nlu, intent=OUT_OF_SCOPE, confidence=0.0, alternatives=(), sentiment_score=0.0)
            decision = self._rules(message, nlu, None)
            if decision.route == "out_of_scope":
                decision = Decision("out_of_scope", "the models gave no usable probabilities (NaN)")
        elif offered and (chosen := self._chosen(message, nlu, offered)) is not None:
            return Decision("answer", f"the customer chose {chosen} when asked", chosen)
        else:
            decision = self._rules(message, nlu, last_topic)
        if decision.route in ("clarify", "out_of_scope") and failures >= self.config.max_failures and (message or "").strip():
            return Decision("handoff", f"{failures + 1} turns in a row without an answer ({decision.reason})",
                            decision.intent)
        return decision

    @staticmethod
    def _chosen(message: str, nlu: Understanding, offered: tuple[str, ...]) -> str | None:
        """Which offered intent a reply to "is it this or that?" picks: by position ("the first",
        "2"), or the offered intent the classifier now ranks higher."""
        text = (message or "").lower()
        words = len(re.findall(r"\w+", text))
        if len(offered) >= 2 and words <= 8:
            if re.search(r"\b(?:first|former|1st|1)\b", text) and not re.search(r"\b(?:second|latter|2nd|2)\b", text):
                return offered[0]
            if re.search(r"\b(?:second|latter|2nd|2|other one)\b", text):
                return offered[1]
        if nlu.intent in offered:
            return nlu.intent
        probs = dict(nlu.alternatives)
        ranked = [o for o in offered if o in probs]
        # A short reply ("the delivery one") leans on the question; a long one is a new request.
        return max(ranked, key=probs.__getitem__) if ranked and words <= 6 else None

    def _rules(self, message: str, nlu: Understanding, last_topic: Topic | None) -> Decision:
        c = self.config
        if not (message or "").strip():
            return Decision("clarify", "empty message")
        if not readable(message):
            return Decision("clarify", "no readable text in the message")
        if asks_for_human(message):
            return Decision("handoff", "the customer asked for a person", nlu.intent)
        words = len(re.findall(r"\w+", message))
        if is_smalltalk(message) or (_OPENER.match(message) and nlu.intent == OUT_OF_SCOPE and words <= 10):
            return Decision("smalltalk", "greeting or thanks with no request")
        about_money = (nlu.intent in MONEY_OR_FRAUD_INTENTS or bool(_FRAUD_WORDS.search(message))
                       or bool(_MONEY.search(message)))
        if about_money and nlu.sentiment == "negative" and nlu.sentiment_score >= c.handoff_negative:
            return Decision("handoff", f"strongly negative ({nlu.sentiment_score:.2f}) about money or fraud",
                            nlu.intent)
        if about_money and distressed(message):
            return Decision("handoff", "upset about money or fraud", nlu.intent)
        if (last_topic is not None and last_topic.intent and looks_like_follow_up(message, max_words=c.follow_up_words)
                and (nlu.intent == OUT_OF_SCOPE or nlu.confidence < c.follow_up_confidence)
                and nlu.intent != last_topic.intent):
            return Decision("answer", f"follow-up to the previous topic ({last_topic.intent})", last_topic.intent)
        if nlu.intent is None or nlu.intent == OUT_OF_SCOPE:
            if words <= c.vague_words:
                return Decision("clarify", f"too short to tell what it is about ({words} word(s))")
            return Decision("out_of_scope", f"intent classifier abstained (confidence {nlu.confidence:.2f})")
        if nlu.margin < c.clarify_margin and nlu.confidence < c.clarify_below and len(nlu.alternatives) >= 2:
            first, second = nlu.alternatives[0][0], nlu.alternatives[1][0]
            return Decision("clarify", f"top intents {first} and {second} are {nlu.margin:.2f} apart",
                            first, (first, second))
        if self.answerable is not None and nlu.intent not in self.answerable:
            return Decision("out_of_scope", f"no knowledge-base answer for intent {nlu.intent}", nlu.intent)
        return Decision("answer", f"intent {nlu.intent} ({nlu.confidence:.2f})", nlu.intent)
