"""The customer-service assistant: understand, route, retrieve, compose, remember.

Usage::

    assistant = Assistant.load()                       # shipped models, knowledge base, SmolLM2
    assistant = Assistant.load(AssistantSettings(llm="openai:http://127.0.0.1:11434/v1:llama3.2", kb="faq.md"))
    reply = assistant.respond("Where is my new card?", session_id="alice")
    reply.route, reply.intent, reply.text, reply.sources

    for event in assistant.stream("and how long does that take?", session_id="alice"):
        ...  # "token" pieces, maybe one "replaced" (the guard's fallback), then "done" with the Reply

Heavy parts are passed in (``Assistant(nlu=…, router=…, index=…, composer=…)``) so tests can hand
in small fakes; :meth:`Assistant.load` builds the real ones.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from agent.cards import CARD_WARNING, mask_cards
from agent.compose import Composer
from agent.flows import FlowBook, FlowEngine, FlowState, FlowStep
from agent.grounding import GroundingGuard
from agent.memory import ConversationMemory
from agent.nlu import NLU, Understanding, entity_dict
from agent.replies import templated, titles_by_intent
from agent.router import Decision, Router, RouterConfig
from agent.store import ConversationStore, open_store

logger = logging.getLogger("agent.assistant")

MAX_MESSAGE_CHARS = 20_000  # longer input is cut (and the reply says so in its reason), never refused
STYLES = ("auto", "draft", "lead_in")


@dataclass(frozen=True)
class AssistantSettings:
    """What the assistant runs with; a path left None is the shipped default (:mod:`agent.shipped`).

    Attributes:
        llm: ``local`` (SmolLM2-135M-Instruct), ``hf:PATH`` or ``openai:URL:MODEL``.
        index_dir: An index built with ``agent index build`` (default: the shipped base, indexed once).
        kb: A knowledge base to index instead of the shipped one.
        intents_dir, entities_dir, sentiment_dir: Checkpoint (or ensemble) folders.
        router_config: A router JSON file (default: ``agent/assets/router.json``).
        backend: Where the quantum heads' circuits run.
        max_new_tokens: Longest reply the language model may write.
        style: ``draft`` (the model writes the reply), ``lead_in`` (one sentence from the model,
            then the answer verbatim) or ``auto``: lead_in for the small local model, else draft.
        threads: CPU threads for torch (None: torch's choice), set when the assistant loads.
        device: Where the intent, entity and sentiment models run: ``cpu`` or ``cuda`` (resolved
            by :func:`finetune.models.device.resolve_device`). The local language model stays as it loads.
        store: Where conversations and cases are kept: a file, a ``sqlite:///`` or
            ``postgresql+psycopg://`` URL, ``none`` (process memory only) or None
            (``$QAGENT_HOME/assistant.db``).
        flows: A flows file (JSON or YAML; default: the shipped banking flows), or ``none`` for
            no flows (every message answered from the knowledge base).
    """

    llm: str = "local"
    index_dir: Path | None = None
    kb: Path | None = None
    intents_dir: Path | None = None
    entities_dir: Path | None = None
    sentiment_dir: Path | None = None
    router_config: Path | None = None
    backend: str = "exact"
    max_new_tokens: int = 96
    style: str = "auto"
    threads: int | None = None
    device: str = "cpu"
    store: str | None = None
    flows: str | None = None

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise ValueError(f"style must be auto, draft or lead_in, got {self.style!r}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {self.threads}")

    @property
    def reply_style(self) -> str:
        """``auto`` resolved: the 135M local model only writes a lead-in; bigger models draft the reply."""
        if self.style != "auto":
            return self.style
        return "lead_in" if self.llm == "local" else "draft"


@dataclass
class Reply:
    """Everything the assistant says and why (times in seconds)."""

    text: str
    route: str
    reason: str
    intent: str | None = None
    confidence: float = 0.0
    entities: list[dict[str, Any]] = field(default_factory=list)
    sentiment: dict[str, Any] | None = None
    sources: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    guard_fired: bool = False
    guard_reasons: list[str] = field(default_factory=list)
    session_id: str = "default"
    flow: str | None = None  # the flow the conversation is in (or just finished), agent.flows
    slots: dict[str, dict[str, Any]] = field(default_factory=dict)  # {name: {"text": as written, "value": normalised}}
    awaiting: str | None = None  # the slot the reply asks for
    case_id: int | None = None  # the case this turn opened or found
    flow_prompt: str = ""  # what a flow added after an answer (its question again, or the offer of a case)

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text, "route": self.route, "reason": self.reason, "intent": self.intent,
            "confidence": round(self.confidence, 4), "entities": self.entities, "sentiment": self.sentiment,
            "sources": self.sources, "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "guard_fired": self.guard_fired, "guard_reasons": self.guard_reasons, "session_id": self.session_id,
            "flow": self.flow, "slots": self.slots, "awaiting": self.awaiting, "case_id": self.case_id,
            "flow_prompt": self.flow_prompt,
        }


@dataclass
class AssistantEvent:
    """One step of :meth:`Assistant.stream`: a ``token`` piece, a ``replaced`` whole text, or ``done``."""

    kind: Literal["token", "replaced", "done"]
    text: str = ""
    reply: Reply | None = field(default=None, repr=False)


def calibrated_router(config: RouterConfig, intents: Any, backend: str) -> tuple[RouterConfig, str]:
    """The router settings for ``backend`` and one line saying which calibration is in use
    (empty on the exact backend without one: its thresholds are the shipped ones).

    A calibration fitted for the backend (``agent finetune calibrate``) carries the clarify margin
    chosen on that backend's calibrated probabilities; it replaces the router's, which was chosen on
    the exact simulator. The intents model has already applied the temperature and threshold.
    """
    calibration = getattr(intents, "calibration", None)
    if calibration is not None:
        if calibration.clarify_margin is not None:
            config = replace(config, clarify_margin=calibration.clarify_margin)
        return config, calibration.describe()
    if str(backend).strip().lower() == "exact":
        return config, ""  # the thresholds were chosen on exact: nothing to say
    return config, (f"no calibration for {backend} in the intents model: confidences, the out-of-scope "
                    "threshold and the clarify margin are the exact backend's; fit one with "
                    f"agent finetune calibrate MODEL --backend {backend} --out DIR")


class Assistant:
    """Answers customers from a knowledge base, with routes and reasons.

    Args:
        nlu: Runs the intent, entity and sentiment models (:class:`agent.nlu.NLU`).
        router: Picks the route (:class:`agent.router.Router`).
        index: Knowledge-base index (:class:`retrieval.index.Index`) searched by sentence vector.
        composer: Drafts and guards answer replies (:class:`agent.compose.Composer`).
        memory: Conversation memory shared by all sessions.
        k: Hits retrieved per answer (the best one is given to the model; all are returned as
            candidates in the reply's ``sources`` with ``used`` flags).
        store: Keeps every turn and opens a case on a handoff (None: process memory only). A
            session seen for the first time since start is restored from it into ``memory``.
        flows: Collects a case's details before opening it (:mod:`agent.flows`; None: no flows).
        clock: The conversation's clock, against which "yesterday" is read (default: local now).
    """

    def __init__(self, nlu: NLU, router: Router, index: Any, composer: Composer,
                 memory: ConversationMemory | None = None, *, k: int = 3,
                 store: ConversationStore | None = None, flows: FlowEngine | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.nlu, self.router, self.index, self.composer = nlu, router, index, composer
        self.memory = memory or ConversationMemory()
        self.k = k
        self.titles = titles_by_intent(getattr(index, "docs", ()))
        self.store = store
        self.flows = flows
        self.clock = clock or (lambda: datetime.now().astimezone())
        self.calibration_note = ""  # which backend calibration is in use (set by load)
        self._seen: set[str] = set()  # sessions already restored from the store (or reset)
        self._warned: set[str] = set()  # sessions told not to share card numbers (without a store)

    @classmethod
    def load(cls, settings: AssistantSettings | None = None, *, chat_model: Any = None, encoder: Any = None,
             progress: Callable[[str], None] | None = None) -> Assistant:
        """Build the assistant from ``settings`` (default: everything shipped, the local model).

        Args:
            settings: Models, knowledge base, language model and router to use.
            chat_model: A LangChain chat model to write replies with instead of ``settings.llm``.
            encoder: An already loaded plain encoder to share (loaded when None).
            progress: Called with a short message before each slow step (e.g. ``print``).
        """
        from agent.knowledge import load_index
        from agent.llm import load_chat_model

        settings = settings or AssistantSettings()
        store = open_store(settings.store)  # a wrong --store fails before minutes of model loading
        no_flows = settings.flows is not None and str(settings.flows).lower() == "none"
        flows = None if no_flows else FlowEngine(FlowBook.load(settings.flows))
        if settings.threads is not None:
            import torch

            torch.set_num_threads(settings.threads)
        say = progress or (lambda message: None)
        say("loading the intent, entity and sentiment models")
        nlu = NLU.load(intents_dir=settings.intents_dir, entities_dir=settings.entities_dir,
                       sentiment_dir=settings.sentiment_dir, backend=settings.backend, encoder=encoder,
                       device=settings.device)
        say("loading the knowledge-base index")
        index = load_index(nlu.encoder, index_dir=settings.index_dir, kb=settings.kb)
        say("loading the language model")
        chat = chat_model if chat_model is not None else load_chat_model(settings.llm, max_new_tokens=settings.max_new_tokens)
        router_config, note = calibrated_router(RouterConfig.load(settings.router_config), nlu.intents, settings.backend)
        if note:
            say(note)
            logger.info(note)
        router = Router(router_config, answerable=set(index.intents) or None)
        assistant = cls(nlu, router, index, Composer(chat, GroundingGuard(), style=settings.reply_style), store=store,
                        flows=flows)
        assistant.calibration_note = note
        return assistant

    def respond(self, message: str, session_id: str = "default") -> Reply:
        """Answer one message and return the whole :class:`Reply`."""
        reply = None
        for event in self.stream(message, session_id):
            reply = event.reply or reply
        assert reply is not None
        return reply

    def stream(self, message: str, session_id: str = "default") -> Iterator[AssistantEvent]:
        """Answer one message, yielding the reply as it is written.

        Yields ``token`` events (pieces of text to append), at most one ``replaced`` event (the
        grounding guard rejected the draft; its text replaces everything streamed so far) and a
        final ``done`` event carrying the :class:`Reply`.
        """
        start = time.perf_counter()
        # Card numbers are masked before the models, the store, the log or the prompt see the text.
        message, cards_masked = mask_cards(_clean(message))
        notes: list[str] = []
        if len(message) > MAX_MESSAGE_CHARS:
            message = message[:MAX_MESSAGE_CHARS]
            notes.append(f"message cut to {MAX_MESSAGE_CHARS} characters")
        timings: dict[str, float] = {}
        case_id: int | None = None
        self._restore(session_id)
        if self.store is not None and (person := self.store.held_by(session_id)):
            yield from self._held_reply(message, session_id, person, cards_masked, notes, start)
            return

        understanding = self.nlu.understand(message)
        timings["nlu_s"] = time.perf_counter() - start
        mark = time.perf_counter()
        decision = self.router.decide(message, understanding, last_topic=self.memory.last_topic(session_id),
                                      failures=self.memory.failures(session_id),
                                      offered=self.memory.pending_options(session_id))
        step = self._flow_step(session_id, message, understanding, decision)
        if step is not None and step.answer_intent:  # an unclear question during a flow: about its topic
            decision = Decision("answer", step.reason, step.answer_intent)
        elif step is not None and not step.aside:  # an aside keeps the router's decision
            intent = understanding.intent if understanding.intent in step.flow.intents else None
            decision = Decision(step.route, step.reason, decision.intent if step.route == "handoff" else intent)
        timings["route_s"] = time.perf_counter() - mark

        sources: list[dict[str, Any]] = []
        guard_fired, guard_reasons, answer_id = False, [], None
        if decision.route == "answer":
            mark = time.perf_counter()
            hits = self._search(understanding, decision)
            timings["retrieval_s"] = time.perf_counter() - mark
            best = hits[0]
            answer_id = best.doc.id
            sources = [{**hit.to_dict(), "used": i == 0} for i, hit in enumerate(hits)]
            text = ""
            mark = time.perf_counter()
            history = self.memory.history(session_id)
            for event in self.composer.stream(message, best, understanding.entities, history):
                if event.kind == "token":
                    if not text:
                        timings["first_token_s"] = time.perf_counter() - start
                    text += event.text
                    yield AssistantEvent("token", event.text)
                elif event.kind == "replaced":
                    text = event.text
                    yield AssistantEvent("replaced", event.text)
                elif event.composition is not None:
                    text = event.composition.text
                    guard_fired = event.composition.guard_fired
                    guard_reasons = list(event.composition.reasons)
            timings["compose_s"] = time.perf_counter() - mark
            timings.setdefault("first_token_s", time.perf_counter() - start)
        elif step is not None and step.route in ("collect", "confirm", "cancel"):
            text = step.text
            timings["first_token_s"] = time.perf_counter() - start
            yield AssistantEvent("token", text)
        elif step is not None and step.open_case:
            case_text, case_id = self._open_case(session_id, message, decision, understanding, step)
            text = case_text
            timings["first_token_s"] = time.perf_counter() - start
            yield AssistantEvent("token", text)
        else:
            text = templated(decision, message, self.titles)
            timings["first_token_s"] = time.perf_counter() - start
            yield AssistantEvent("token", text)
        extra = ""
        if step is not None and step.aside:  # back to the flow's question, or the offer of a case
            extra += step.text
        if decision.route == "handoff" and not (step is not None and step.open_case):
            case_text, case_id = self._open_case(session_id, message, decision, understanding, step)
            extra += (" " + case_text) if case_text else ""
        if cards_masked and self._warn_once(session_id):
            extra += " " + CARD_WARNING
            notes.append("card number masked")
        if extra:
            text += extra
            yield AssistantEvent("token", extra)
        timings["total_s"] = time.perf_counter() - start

        flow_state = None if step is None or step.state is None else step.state.to_dict()
        self.memory.add_turn(session_id, message[:2000], text, route=decision.route, answer_id=answer_id,
                             intent=decision.intent if decision.route in ("answer", "collect", "confirm") else None,
                             options=decision.options, flow=flow_state)
        reply = self._reply(text, decision, understanding, sources, timings, guard_fired, guard_reasons,
                            session_id, notes)
        if step is not None:
            reply = replace(reply, flow=step.flow.name, slots=step.slots, awaiting=step.awaiting,
                            flow_prompt=step.text if step.aside else "")
        reply.case_id = case_id
        if self.store is not None:
            self.store.add_turn(session_id, "customer", message, route=reply.route, reason=reply.reason, reply=text,
                                timings={k: round(v, 4) for k, v in timings.items()},
                                nlu={"intent": understanding.intent, "confidence": round(understanding.confidence, 4),
                                     "entities": reply.entities, "sentiment": reply.sentiment,
                                     "memory_intent": decision.intent if decision.route in ("answer", "collect", "confirm") else None,
                                     "answer_id": answer_id, "options": list(decision.options),
                                     "flow": reply.flow, "slots": reply.slots, "flow_state": flow_state,
                                     "case_id": case_id})
        logger.info("route=%s intent=%s reason=%s guard=%s", reply.route, reply.intent, reply.reason, guard_fired)
        yield AssistantEvent("done", text, reply)

    def reset(self, session_id: str) -> None:
        """Forget a conversation (the store keeps what was said; it is not restored again)."""
        self.memory.clear(session_id)
        self._seen.add(session_id)

    def pending_replies(self, session_id: str) -> list[str]:
        """Replies a person wrote on this conversation's case since the customer last wrote (marked seen)."""
        return [] if self.store is None else self.store.pending_person_replies(session_id)

    # Said once per hold, to the first message after a person took the case; later messages get no
    # reply from the assistant (an empty text): the customer is talking with a person now, and a
    # bot repeating itself between the person's answers would read as if nobody was there.
    HELD_NOTICE = "A member of our team is looking at this conversation and will reply here."

    def _held_reply(self, message: str, session_id: str, person: str, cards_masked: bool, notes: list[str],
                    start: float) -> Iterator[AssistantEvent]:
        """A person holds the conversation (``agent cases take``, the Desk): keep the customer's turn
        for them and run no model; the reply is :attr:`HELD_NOTICE` once per hold, then empty."""
        assert self.store is not None
        text = self.HELD_NOTICE if self.store.turns_while_held(session_id) == 0 else ""
        if cards_masked and self._warn_once(session_id):
            text = f"{text} {CARD_WARNING}".strip()
            notes.append("card number masked")
        if text:
            yield AssistantEvent("token", text)
        reason = "; ".join([f"a person ({person}) holds this conversation", *notes])
        timings = {"total_s": time.perf_counter() - start}
        self.memory.add_turn(session_id, message[:2000], text, route="handoff")
        self.store.add_turn(session_id, "customer", message, route="handoff", reason=reason, reply=text,
                            timings={k: round(v, 4) for k, v in timings.items()})
        yield AssistantEvent("done", text, Reply(text, "handoff", reason, timings=timings, session_id=session_id))

    def _restore(self, session_id: str) -> None:
        """Refill memory from the store the first time a session is seen since start."""
        if self.store is None or session_id in self._seen:
            return
        self._seen.add(session_id)
        if self.memory.turns(session_id):
            return
        for turn in self.store.turns(session_id)[-self.memory.max_turns:]:
            if turn.role != "customer":
                continue
            nlu = turn.nlu or {}
            self.memory.add_turn(session_id, turn.text[:2000], turn.reply or "", route=turn.route,
                                 intent=nlu.get("memory_intent"), answer_id=nlu.get("answer_id"),
                                 options=tuple(nlu.get("options") or ()), flow=nlu.get("flow_state"))

    def _warn_once(self, session_id: str) -> bool:
        if self.store is not None:
            if self.store.card_warned(session_id):
                return False
            self.store.mark_card_warned(session_id)
            return True
        if session_id in self._warned:
            return False
        self._warned.add(session_id)
        return True

    def _flow_step(self, session_id: str, message: str, nlu: Understanding, decision: Decision) -> FlowStep | None:
        """What the flows make of this message (None: no flow is involved)."""
        if self.flows is None:
            return None
        state = FlowState.from_dict(self.memory.flow(session_id))
        return self.flows.step(message, nlu, decision, state, self.clock())

    def _open_case(self, session_id: str, message: str, decision: Decision, nlu: Understanding,
                   step: FlowStep | None = None) -> tuple[str, int | None]:
        """Open (or find) the conversation's case: the sentence that tells the customer, and its id."""
        flow = None if step is None else step.flow
        if self.store is None:
            if step is not None and step.open_case:
                return ("I have all the details, but this assistant keeps no case records (it runs with "
                        "--store none), so please contact our team to report it.", None)
            return "", None
        if flow is not None:
            summary = _shorten(self.flows.summary(flow, step.slots), 280) if self.flows else flow.title
        else:
            said = [t.user for t in self.memory.turns(session_id)][-2:] + [message]
            summary = _shorten(" / ".join(s.strip() for s in said if s.strip()), 280)
        case, opened = self.store.open_case(session_id, reason=decision.reason, sentiment=nlu.sentiment,
                                            summary=summary, flow=None if flow is None else flow.name,
                                            slots=None if step is None else step.slots)
        if step is not None and step.open_case:
            if opened:
                return flow.done.format(case_id=case.id, title=flow.title), case.id
            return (f"Your case {case.id} is already open with our team; they can see these details in this "
                    "conversation."), case.id
        if opened:
            return f"Your case number is {case.id}.", case.id
        return f"Your case {case.id} is already open with our team.", case.id

    def _search(self, understanding: Understanding, decision: Decision) -> list[Any]:
        if understanding.vector is not None:
            return self.index.search(understanding.vector.numpy(), k=self.k, intent=decision.intent)
        return self.index.search(understanding.text, k=self.k, intent=decision.intent)

    @staticmethod
    def _reply(text: str, decision: Decision, nlu: Understanding, sources: list[dict[str, Any]],
               timings: dict[str, float], guard_fired: bool, guard_reasons: list[str], session_id: str,
               notes: list[str]) -> Reply:
        intent = decision.intent  # None for routes not about an intent (small talk, empty input)
        confidence = nlu.confidence if intent is not None and intent == nlu.intent else 0.0
        return Reply(
            text=text, route=decision.route, reason="; ".join([decision.reason, *notes]), intent=intent,
            confidence=confidence, entities=[entity_dict(e) for e in nlu.entities],
            sentiment=None if nlu.sentiment is None else {"label": nlu.sentiment, "score": round(nlu.sentiment_score, 4)},
            sources=sources, timings=timings, guard_fired=guard_fired, guard_reasons=guard_reasons,
            session_id=session_id,
        )


def load_assistant(settings: AssistantSettings | None = None, *, quiet: bool = False) -> Assistant:
    """Load the assistant for a program a person watches: each slow step announced on stderr
    (unless ``quiet``; stdout stays machine-readable), library progress bars and the guard's log
    notes kept off the screen (they belong in the reply's fields)."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Loading weights" bars on every start say nothing to a user
    logging.getLogger("agent").setLevel(logging.ERROR)
    return Assistant.load(settings, progress=None if quiet else _announce)


def _announce(message: str) -> None:
    print(f"… {message}", file=sys.stderr, flush=True)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _clean(message: Any) -> str:
    """Text from whatever arrived: bytes decode with replacement, None becomes empty, NULs go."""
    if message is None:
        return ""
    if isinstance(message, (bytes, bytearray)):
        message = bytes(message).decode("utf-8", errors="replace")
    if not isinstance(message, str):
        raise TypeError(f"message must be text, got {type(message).__name__}")
    return message.replace("\x00", "")
