"""Running flows: start one from the router's decision, fill its slots turn by turn, confirm, finish.

:meth:`FlowEngine.step` takes one customer message (with what the models and the router made of
it) and the flow state the previous turn left, and says what happens: a :class:`FlowStep` with
the route (``collect``, ``confirm``, ``cancel``, ``handoff``, or ``answer`` for a digression), the
text, and the state to keep. It returns None when flows have nothing to do with the message (the
assistant then answers as usual).

The conversation patterns users of such systems expect (after Rasa CALM's):

- **start**: a flow's intent starts it, unless the message is a general how-to question with no
  details ("how do refunds work?" gets the knowledge-base answer). The details in the first
  message are kept and never asked for again;
- **collect**: each turn's entities (the tagger's, plus amounts and dates read from the text) fill
  what is missing; an answer to the question just asked is read as that slot's type;
- **correction**: "sorry, it was £16 not £60" replaces the value it names (or the only slot of
  that type); at the confirmation the summary is shown again;
- **cancel**: "never mind" leaves the flow; no case;
- **digression**: a question about something else is answered and the flow's question repeated;
- **clarification / cannot-handle**: a reply that holds no value is asked again with a hint; after
  ``max_misses`` such turns the case goes to a person with what was collected;
- **handoff**: asking for a person at any point opens a case with the slots so far;
- **confirm**: once every required slot is filled the customer sees a summary; "yes" opens the
  case (``open_case``), "no" asks what to change.

State is a plain dict (:meth:`FlowState.to_dict`) so the conversation store keeps it with the
turn and a restarted server continues the flow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from agent.flows.spec import FlowBook, FlowSpec, SlotSpec
from agent.flows.values import Found, find_names, find_value, normalise, shown
from agent.router import asks_for_human, distressed

StepRoute = Literal["collect", "confirm", "cancel", "handoff", "answer", "out_of_scope", "smalltalk"]

_YES = re.compile(r"^\W*(?:yes|yeah|yep|yup|y|correct|that'?s (?:right|correct|it)|right|confirm(?:ed)?|sure|"
                  r"ok(?:ay)?|please do|go ahead|do it|all (?:correct|good)|looks (?:good|right|fine)|perfect|"
                  r"exactly|spot on|please)\b(?!.*\b(?:but|not|wrong)\b)", re.I)
_NO = re.compile(r"^\W*(?:no|nope|nah|n|not (?:quite|right|correct)|wrong|incorrect|that'?s (?:wrong|not right)|"
                 r"(?:the )?\w+ is wrong)\b", re.I)
_CANCEL = re.compile(
    r"\b(?:never\s?mind|nevermind|forget (?:it|about it|that)|cancel (?:it|that|this|the (?:case|request|claim))|"
    r"don'?t bother|no need|leave it|drop it|i'?ve found (?:it|the|my)|i found (?:it|my)|(?:it'?s|all) sorted|"
    r"doesn'?t matter|not needed any ?more|ignore (?:that|this|me))\b|^\W*(?:cancel|stop|quit|exit)\W*$", re.I)
_HOW_TO = re.compile(
    r"^\W*(?:how (?:do|can|long|does|much|will|would|should)|what (?:happens|should|do|does|is|are|if|can)|"
    r"can (?:i|you)|could (?:i|you)|is it possible|do you|will i|when will|where can|why (?:do|does|would))\b", re.I)
# Words that make a message a report of something that happened to this customer, even phrased
# as a question ("what do I do, my card was stolen?").
_REPORT = re.compile(
    r"\b(?:i (?:lost|have lost|'ve lost|can'?t find|don'?t recogni[sz]e|do not recogni[sz]e|didn'?t (?:make|authori[sz]e|"
    r"get|receive|buy)|was charged|got charged|have been charged|'ve been charged|only got)|"
    r"(?:was|were|been|got|has been) (?:stolen|charged|debited)|charged (?:me )?twice|"
    r"my (?:card|phone|wallet|purse)\b.{0,20}\b(?:lost|stolen|missing|gone)|"
    r"(?:has |have |it |and it )?(?:failed|bounced)|never (?:arrived|came|turned up|reached)|"
    r"(?:hasn'?t|haven'?t|has not|have not|didn'?t|did not) (?:arrived|arrive|come|turned up|received|receive|got|get))\b",
    re.I)
_UNSURE = re.compile(r"\b(?:don'?t know|not sure|no idea|can'?t remember|cannot remember|forgot|dunno)\b", re.I)
# A reply made only of these words is an answer to a yes/no question, never a name or a value.
_AFFIRM = frozenset("yes yeah yep yup correct right sure ok okay confirm confirmed exactly perfect fine good "
                    "absolutely definitely".split())
_NEGATE = frozenset("no nope nah wrong incorrect".split())
_FILLER = frozenset("that's thats that is it all looks sounds spot on thanks thank you please go ahead do "
                    "so yes i think quite totally".split())


def _only(words: frozenset[str], message: str) -> bool:
    """The message says nothing but ``words`` (and fillers): "yes, that's all correct"."""
    tokens = [t.lower() for t in re.findall(r"[\w']+", message)]
    return bool(tokens) and all(t in words or t in _FILLER for t in tokens) and any(t in words for t in tokens)


def _ack(message: str) -> bool:
    return _only(_AFFIRM | _NEGATE | frozenset({"thanks", "cheers", "hi", "hello"}), message)


def _yes(message: str) -> bool:
    return bool(_YES.search(message)) or _only(_AFFIRM, message)
_MASKED_CARD = re.compile(r"•{2,}\s?\d{4}")
_CUE_WINDOW = 32  # characters before a value searched for one of its slot's cues ("asked for £100")


@dataclass
class FlowState:
    """A flow in progress: its name, the slots filled so far, and what was asked last."""

    flow: str
    slots: dict[str, dict[str, Any]] = field(default_factory=dict)  # name → {"text", "value"}
    stage: Literal["collect", "confirm", "change"] = "collect"
    awaiting: str | None = None
    misses: int = 0
    offered: bool = False  # started by a question: answered, and the case only offered
    intent: str | None = None  # the intent that started it: the topic of unclear questions asked during it

    def to_dict(self) -> dict[str, Any]:
        return {"flow": self.flow, "slots": self.slots, "stage": self.stage, "awaiting": self.awaiting,
                "misses": self.misses, "offered": self.offered, "intent": self.intent}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> FlowState | None:
        if not data or not isinstance(data, dict) or "flow" not in data:
            return None
        return cls(str(data["flow"]), dict(data.get("slots") or {}), data.get("stage", "collect"),
                   data.get("awaiting"), int(data.get("misses", 0)), bool(data.get("offered", False)),
                   data.get("intent"))


@dataclass
class FlowStep:
    """What flows make of one message.

    Attributes:
        route: ``collect``/``confirm``/``cancel``; ``handoff`` (``open_case``: the customer confirmed;
            else a person is asked for, with the slots so far); or, for an ``aside``, the router's
            own route (``answer``, ``out_of_scope``, ``smalltalk``).
        text: What to say (for an aside: what to add after the assistant's usual reply, the flow's
            question again or the offer of a case).
        reason: Why, for the reply's ``reason``.
        flow: The flow's spec.
        slots: The slots after this message.
        state: The state to keep (None: the flow is over).
        open_case: Open the case now (the customer confirmed).
    """

    route: StepRoute
    text: str
    reason: str
    flow: FlowSpec
    slots: dict[str, dict[str, Any]]
    state: FlowState | None
    open_case: bool = False
    aside: bool = False  # the assistant replies as the router decided, then adds ``text``
    answer_intent: str | None = None  # an aside the router could not place: answer this intent

    @property
    def awaiting(self) -> str | None:
        return None if self.state is None else self.state.awaiting


class FlowEngine:
    """Applies the flows of a :class:`~agent.flows.spec.FlowBook` to a conversation.

    Args:
        book: The flows.
        max_misses: Replies in a row that give no usable value before the case goes to a person.
    """

    def __init__(self, book: FlowBook, *, max_misses: int = 3) -> None:
        if max_misses < 1:
            raise ValueError(f"max_misses must be >= 1, got {max_misses}")
        self.book, self.max_misses = book, max_misses

    def step(self, message: str, nlu: Any, decision: Any, state: FlowState | None, now: datetime) -> FlowStep | None:
        """One message through the flows (``nlu``: an Understanding; ``decision``: the router's)."""
        if state is not None and state.flow in self.book.flows:
            return self._continue(message, nlu, decision, state, now)
        return self._start(message, nlu, decision, now)

    def summary(self, flow: FlowSpec, slots: dict[str, dict[str, Any]]) -> str:
        """``Payment you don't recognise: amount £25.40, date Tuesday 17 March 2026, merchant Tesco``."""
        parts = [f"{s.shown_name} {shown(s.type, slots[s.name]['value'])}" for s in flow.slots if s.name in slots]
        return f"{flow.title}: {', '.join(parts) if parts else 'no details yet'}"

    # --- starting ----------------------------------------------------------------------------
    def _start(self, message: str, nlu: Any, decision: Any, now: datetime) -> FlowStep | None:
        flow, slots, sure = self._flow_of(message, decision, nlu, now)
        if flow is None:
            return None
        if not sure and len(slots) < 2 and not _REPORT.search(message):
            return None  # an unsure classifier and too little that reads as this flow's case
        if decision.route == "handoff" and (asks_for_human(message) or distressed(message)):
            # Asked for a person, or angry: a person takes it now, with what was said as the case.
            return FlowStep("handoff", "", f"{decision.reason} ({flow.name})", flow, slots, None)
        if decision.route == "handoff":
            # Only the sentiment model found it negative ("my transfer failed yesterday"): the flow
            # takes the details, and the case it opens goes to the same team.
            decision = type(decision)("answer", decision.reason, flow.intents[0])
        if not slots and _HOW_TO.search(message) and not _REPORT.search(message):
            return None  # "how long do refunds take?": the knowledge base answers it
        state = FlowState(flow.name, slots, intent=decision.intent or nlu.intent)
        if _is_question(message):
            # "There's an extra £1 on my statement, what is that?": the question is answered first
            # and the case offered; the flow goes on only if the customer takes it up.
            state.offered = True
            topic = decision.intent if decision.route == "answer" and decision.intent in flow.intents else None
            topic = topic or next((i for i in (nlu.intent, *(a for a, _ in getattr(nlu, "alternatives", ())))
                                   if i in flow.intents), flow.intents[0])
            step = self._next(flow, state, "", f"intent {topic} offers flow {flow.name}", noted=_noted(flow, slots))
            return FlowStep("answer", f"\n\nIf you'd like our team to look into it, I can open a case. {step.text}",
                            step.reason, flow, slots, step.state, aside=True,
                            answer_intent=None if decision.route == "answer" else topic)
        intro = f"I can help with that. {flow.advice} " if flow.advice else "I can help with that. "
        return self._next(flow, state, intro, f"intent {decision.intent or nlu.intent} starts flow {flow.name}",
                          noted=_noted(flow, slots))

    def _flow_of(self, message: str, decision: Any, nlu: Any, now: datetime
                 ) -> tuple[FlowSpec | None, dict[str, dict[str, Any]], bool]:
        """The flow this message may start, the slots it fills, and whether the router was sure of
        the intent. When it was not, the likely intents' flows compete on the details the message
        gives ("I sent £300 to James Taylor on Monday" fills a transfer's amount, date and
        recipient, a cash machine's only two of three), and the winner needs at least one."""
        if decision.route == "answer":
            flow = self.book.for_intent(decision.intent)
            return flow, ({} if flow is None else self._fill(flow, {}, message, nlu, now, awaiting=None)[0]), True
        if decision.route not in ("clarify", "out_of_scope", "handoff"):
            return None, {}, False
        if decision.route == "clarify" and decision.options:
            flows = {self.book.for_intent(o) for o in decision.options}
            # Both offered intents lead to the same flow ("card payment" or "direct debit" not
            # recognised): collecting details needs no choice between them.
            if len(flows) == 1 and None not in flows:
                flow = flows.pop()
                return flow, self._fill(flow, {}, message, nlu, now, awaiting=None)[0], True
        likely = [nlu.intent, *(name for name, _ in getattr(nlu, "alternatives", ())[:3])]
        likely = [i for i in likely if i and i != "out_of_scope"]
        if not likely or self.book.for_intent(likely[0]) is None:
            return None, {}, False  # the most likely intent is no flow's: no case to collect for
        best: tuple[tuple[int, float, int], FlowSpec, dict[str, dict[str, Any]]] | None = None
        for rank, intent in enumerate(likely):
            flow = self.book.for_intent(intent)
            if flow is None:
                continue
            slots = self._fill(flow, {}, message, nlu, now, awaiting=None)[0]
            required = [s for s in flow.slots if s.required]
            score = (len(slots), len([s for s in required if s.name in slots]) / max(1, len(required)), -rank)
            if best is None or score > best[0]:
                best = (score, flow, slots)
        if best is None:
            return None, {}, False
        return best[1], best[2], False

    # --- continuing --------------------------------------------------------------------------
    def _continue(self, message: str, nlu: Any, decision: Any, state: FlowState, now: datetime) -> FlowStep:
        flow = self.book.flows[state.flow]
        slots, changed = self._fill(flow, state.slots, message, nlu, now,
                                    awaiting=state.awaiting if state.stage != "confirm" else None)
        if decision.route == "handoff":
            return FlowStep("handoff", "", f"{decision.reason} (during flow {flow.name})", flow, slots, None)
        if _CANCEL.search(message):
            return FlowStep("cancel", "No problem, I've stopped there and no case was opened. "
                            "Is there anything else I can help with?", f"the customer left flow {flow.name}",
                            flow, slots, None)
        if state.offered and not changed and not _yes(message):
            if state.misses >= 1 or not self._digression(decision, flow, message):
                return None  # the offer was not taken up: the flow is dropped, the message answered as usual
            state = FlowState(flow.name, slots, state.stage, state.awaiting, state.misses + 1, True, state.intent)
            return FlowStep(decision.route, f"\n\nAnd if you'd still like a case opened: {self._question(flow, state)}",
                            f"{decision.reason}; case still offered (flow {flow.name})", flow, slots, state, aside=True)
        accepted = state.offered and state.stage == "collect" and not changed  # "yes" to the offer
        state = FlowState(flow.name, slots, state.stage, state.awaiting, 0 if state.offered else state.misses,
                          intent=state.intent)
        if accepted:
            return self._next(flow, state, "Thanks. ", f"the customer took up flow {flow.name}")
        if changed:
            state.misses = 0
            if state.stage != "collect" and _missing(flow, slots) == []:
                return self._confirm(flow, state, "Thanks, I've updated that. ", f"the customer corrected flow {flow.name}")
            return self._next(flow, state, "", f"slot(s) {', '.join(sorted(changed))} filled",
                              noted=_noted(flow, {k: v for k, v in slots.items() if changed.get(k)}))
        if state.stage == "confirm":
            if _yes(message):
                return FlowStep("handoff", "", f"the customer confirmed flow {flow.name}", flow, slots, None,
                                open_case=True)
            if _NO.search(message):
                state.stage, state.awaiting = "change", None
                names = ", ".join(s.shown_name for s in flow.slots)
                return FlowStep("collect", f"What should I change? Tell me the right {names}.",
                                f"the customer said the details of flow {flow.name} are wrong", flow, slots, state)
        if decision.route == "clarify" and _is_question(message) and state.intent:
            # An unclear question in the middle of a flow is most likely about the flow's topic.
            again = self._question(flow, state)
            return FlowStep("answer", f"\n\nNow, back to your {flow.title.lower()}: {again}",
                            f"a question during flow {flow.name}, taken as about {state.intent}", flow, slots, state,
                            aside=True, answer_intent=state.intent)
        if self._digression(decision, flow, message):
            again = self._question(flow, state)
            return FlowStep(decision.route, f"\n\nNow, back to your {flow.title.lower()}: {again}",
                            f"{decision.reason}; flow {flow.name} waits", flow, slots, state, aside=True)
        state.misses += 1
        if state.misses >= self.max_misses:
            return FlowStep("handoff", "", f"{state.misses} replies in flow {flow.name} gave no usable detail",
                            flow, slots, None)
        return self._retry(flow, state, message)

    @staticmethod
    def _digression(decision: Any, flow: FlowSpec, message: str) -> bool:
        """A message the assistant replies to as usual before asking again: a question about
        something else or about this flow's topic ("will I have to pay for the new card?"), a
        question it cannot help with, or small talk ("thanks")."""
        if decision.route == "answer":
            return decision.intent is not None and (decision.intent not in flow.intents or _is_question(message))
        return decision.route == "smalltalk" or (decision.route == "out_of_scope" and _is_question(message))

    def _retry(self, flow: FlowSpec, state: FlowState, message: str) -> FlowStep:
        if state.stage == "confirm":
            return FlowStep("confirm", "Please answer yes to open the case, or tell me what to change. "
                            + self.summary(flow, state.slots) + ".", f"no yes or no in the reply (flow {flow.name})",
                            flow, state.slots, state)
        if state.stage == "change":
            names = ", ".join(s.shown_name for s in flow.slots)
            return FlowStep("collect", f"Sorry, I didn't catch the new detail. Tell me the right {names}, "
                            "or say \"never mind\" to stop.", f"no new value (flow {flow.name})", flow, state.slots, state)
        slot = flow.slot(state.awaiting) if state.awaiting else _missing(flow, state.slots)[0]
        hint = {"amount": "an amount such as £25.40", "date": "a day such as \"yesterday\" or \"3 March\"",
                "name": "a name such as the shop or the person"}[slot.type]
        lead = "That's fine. If you can find it, " if _UNSURE.search(message) else f"Sorry, I couldn't read {hint} in that. "
        return FlowStep("collect", lead + slot.question, f"no {slot.type} in the reply (flow {flow.name}, "
                        f"try {state.misses} of {self.max_misses})", flow, state.slots, state)

    # --- asking ------------------------------------------------------------------------------
    def _next(self, flow: FlowSpec, state: FlowState, lead: str, reason: str, *, noted: str = "") -> FlowStep:
        """Ask for the next missing slot (after ``noted``, what was just taken down), or confirm
        (the summary repeats every value, so ``noted`` is left out)."""
        missing = _missing(flow, state.slots)
        if not missing:
            return self._confirm(flow, state, lead, reason)
        state.stage, state.awaiting = "collect", missing[0].name
        return FlowStep("collect", (lead + noted + missing[0].question).strip(), reason, flow, state.slots, state)

    def _confirm(self, flow: FlowSpec, state: FlowState, lead: str, reason: str) -> FlowStep:
        state.stage, state.awaiting = "confirm", None
        text = f"{lead}Here's what I have. {self.summary(flow, state.slots)}. Shall I open a case with these details? (yes / no)"
        return FlowStep("confirm", text.strip(), reason, flow, state.slots, state)

    def _question(self, flow: FlowSpec, state: FlowState) -> str:
        if state.stage == "confirm":
            return f"{self.summary(flow, state.slots)}. Shall I open a case with these details? (yes / no)"
        if state.awaiting:
            return flow.slot(state.awaiting).question
        return "Tell me what to change, or say \"never mind\" to stop."

    # --- filling -----------------------------------------------------------------------------
    def _fill(self, flow: FlowSpec, slots: dict[str, dict[str, Any]], message: str, nlu: Any, now: datetime,
              awaiting: str | None) -> tuple[dict[str, dict[str, Any]], dict[str, bool]]:
        """Slots after ``message``, and which of them it set or changed."""
        out = dict(slots)
        changed: dict[str, bool] = {}
        by_type: dict[str, list[SlotSpec]] = {}
        for slot in flow.slots:
            by_type.setdefault(slot.type, []).append(slot)
        for slot_type, group in by_type.items():
            answer = awaiting is not None and any(s.name == awaiting for s in group)
            values = self._values(slot_type, group, message, nlu, now, answer=answer)
            for name, found in self._assign(group, out, values, message, awaiting).items():
                entry = {"text": found.text, "value": found.value}
                if out.get(name, {}).get("value") != found.value:
                    changed[name] = True
                out[name] = entry
        return out, changed

    def _values(self, slot_type: str, group: list[SlotSpec], message: str, nlu: Any, now: datetime,
                *, answer: bool) -> list[Found]:
        """Values of one type: the tagger's entities first, then what the text itself shows."""
        kinds = {k for s in group for k in s.entities}
        text = getattr(nlu, "text", message) or message
        found: list[Found] = []
        for entity in getattr(nlu, "entities", ()):
            if entity.type in kinds:
                value = normalise(slot_type, entity.text, now, self.book.default_currency)
                if value is not None:
                    found.append(Found(entity.text, entity.start, entity.end, value))
        found = [f for f in found if not _in_masked_card(text, f)]
        if slot_type == "name":
            if not found:  # the tagger missed it: a capitalised name after "at", "to", "from"…
                found = find_names(text)
            if (found or not answer or _UNSURE.search(message) or _ack(message) or _is_question(message)
                    or find_value("amount", text, now) or find_value("date", text, now)):
                return found  # "It was 212 euros" answers another question than "which shop?"
        for extra in find_value(slot_type, text, now, self.book.default_currency, answer=answer and not found):
            if _in_masked_card(text, extra):
                continue
            if not any(extra.start < f.end and f.start < extra.end for f in found):
                found.append(extra)
            else:  # the same words: keep the longer reading ("£25.40" over the tagger's "25.40")
                found = [extra if (extra.start < f.end and f.start < extra.end and extra.end - extra.start > f.end - f.start)
                         else f for f in found]
        return sorted(found, key=lambda f: f.start)

    @staticmethod
    def _assign(group: list[SlotSpec], slots: dict[str, dict[str, Any]], values: list[Found], message: str,
                awaiting: str | None) -> dict[str, Found]:
        """Which slot each value fills."""
        if not values:
            return {}
        lowered = message.lower()
        out: dict[str, Found] = {}
        # "…, not Patel": a value right after "not" or "instead of" is the one taken back.
        negated = [v for v in values if re.search(r"\b(?:not|instead of|rather than)\s+(?:the\s+)?$", lowered[:v.start])]
        left = [v for v in values if v not in negated]
        if group[0].type == "name" and len(group) == 1 and len(left) > 1:
            left = sorted(left, key=lambda v: -len(v.text))[:1]  # "Shah, … so Priya Shah": the fullest
        # Correction: a value equal to a slot's current one is the one being taken back ("£16 not
        # £60"); another value of the same type replaces it.
        for slot in group:
            current = slots.get(slot.name, {}).get("value")
            named = [v for v in left if v.value == current]
            others = [v for v in left if v.value != current]
            if current is not None and named and others:
                out[slot.name] = others[0]
                left = [v for v in left if v is not others[0] and v not in named]
        # Cues: "I asked for £100 but only got £60".
        for value in list(left):
            before = lowered[max(0, value.start - _CUE_WINDOW): value.start]
            for slot in group:
                if slot.name not in out and any(re.search(rf"\b{re.escape(cue)}\b", before) for cue in slot.cues):
                    out[slot.name] = value
                    left.remove(value)
                    break
        # The rest, in order: the slot being asked for, then empty slots in the flow's order.
        order = sorted(group, key=lambda s: (s.name != awaiting, s.name in slots))
        for slot in order:
            if not left:
                break
            if slot.name in out or (slot.name in slots and len(group) > 1 and slot.name != awaiting):
                continue
            out[slot.name] = left.pop(0)
        return out


def _in_masked_card(text: str, found: Found) -> bool:
    """A value read inside a masked card number ("•••• 1111" is not £1111)."""
    return any(m.start() <= found.start < m.end() for m in _MASKED_CARD.finditer(text))


def _is_question(message: str) -> bool:
    return "?" in message or bool(_HOW_TO.search(message))


def _missing(flow: FlowSpec, slots: dict[str, Any]) -> list[SlotSpec]:
    return [s for s in flow.slots if s.required and s.name not in slots]


def _noted(flow: FlowSpec, slots: dict[str, dict[str, Any]]) -> str:
    """"Thanks, I have the amount (£25.40) and the merchant (Tesco). " for the slots just filled."""
    parts = [f"the {s.shown_name} ({shown(s.type, slots[s.name]['value'])})" for s in flow.slots if s.name in slots]
    if not parts:
        return ""
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"I've noted {listed}. "
