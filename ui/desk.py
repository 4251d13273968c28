"""The Desk tab: a person takes over a conversation the assistant handed off.

The list shows the open and assigned cases, most upset first, then newest
(:meth:`agent.store.ConversationStore.desk_cases`), and refreshes itself every few seconds.
Clicking a case shows its conversation (customer, assistant and person turns), the intent the
models understood, the slots collected and the handoff reason. **Take** makes the case the
person's and holds its conversation: the assistant stays silent there (it stores the customer's
messages, runs no model) until **Hand back to assistant** or **Resolve**. **Send reply** writes a
person turn that appears in the customer's chat within seconds, named as from the team.

Who acts: with ``agent serve --auth`` the logged-in user name; without a login the name typed in
the tab (the customer sees it with the replies). The desk works on the assistant's store; with
``--store none`` there is nothing to work on and the tab says so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, Protocol

import gradio as gr  # at module level: Gradio reads the gr.Request / gr.SelectData hints of the handlers

from ui.messages import hide_paths

logger = logging.getLogger("ui.desk")

COLUMNS = ["Case", "Age", "Sentiment", "Flow", "Who", "Reason", "Summary"]
REFRESH_S = 3.0  # a new handoff shows within seconds; each tick is one small query per open desk
NO_STORE = ("**The desk needs the conversation store**, and this server keeps conversations in memory only "
            "(`--store none`). Restart `agent serve` without it (or with `--store FILE|URL`) to take over "
            "handed-off conversations here.")
PICK_FIRST = "Pick a case in the list first."


class DeskStore(Protocol):
    """What the desk needs of :class:`agent.store.ConversationStore`."""

    def desk_cases(self) -> list[Any]: ...

    def case(self, case_id: int) -> Any: ...

    def turns(self, session_id: str) -> list[Any]: ...

    def take_case(self, case_id: int, person: str) -> Any: ...

    def hand_back(self, case_id: int) -> Any: ...

    def reply_to_case(self, case_id: int, text: str, person: str | None = None) -> Any: ...

    def set_status(self, case_id: int, status: str) -> Any: ...


def team_label(author: str | None) -> str:
    """How a person's reply is marked in a chat: ``**Team (Dana):**``."""
    return f"**Team ({author}):**" if author else "**Team:**"


def age(created_at: str, now: datetime) -> str:
    """``45 s``, ``3 min``, ``2 h``, ``4 d`` since an ISO time."""
    try:
        then = datetime.fromisoformat(created_at)
    except ValueError:
        return "-"
    seconds = max(0, int((now - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def who(case: Any) -> str:
    """Who works on the case: nobody yet, its assignee, or the person holding the conversation now."""
    if case.held_by:
        return f"{case.held_by} (holds)"
    return case.assignee or "nobody yet"


def transcript(turns: list[Any]) -> list[dict[str, str]]:
    """A conversation as chat messages: the customer on one side, the assistant and people on the other."""
    messages = []
    for turn in turns:
        if turn.role == "customer":
            messages.append({"role": "user", "content": turn.text})
            if turn.reply:  # empty while a person held the conversation: the assistant said nothing
                messages.append({"role": "assistant", "content": f"**Assistant:** {turn.reply}"})
        elif turn.role == "person":
            messages.append({"role": "assistant", "content": f"{team_label(turn.author)} {turn.text}"})
    return messages


def case_details(case: Any, turns: list[Any]) -> str:
    """The side panel: handoff reason, intent, sentiment, flow and slots."""
    lines = [f"**Handoff reason:** {case.handoff_reason or '-'}"]
    said = [t.nlu or {} for t in turns if t.role == "customer"]
    # The message that asked for a person is often about the person, not the bank ("out_of_scope");
    # the last question the assistant answered says what the customer came about.
    at_handoff = next((n for n in reversed(said) if n.get("intent")), None)
    if at_handoff:
        lines.append(f"**Intent at the handoff:** `{at_handoff['intent']}` "
                     f"({float(at_handoff.get('confidence') or 0.0):.0%} confidence)")
    else:
        lines.append("**Intent at the handoff:** none understood")
    topic = next((n["memory_intent"] for n in reversed(said) if n.get("memory_intent")), None)
    if topic:
        lines.append(f"**Topic:** `{topic}` (the last question the assistant answered)")
    lines.append(f"**Sentiment:** {case.sentiment or '-'} · **Flow:** {case.flow or '-'}")
    if case.slots:
        lines.append("**Slots:**\n\n| slot | as written | value |\n|---|---|---|\n" + "\n".join(
            f"| {_cell(name)} | {_cell((slot or {}).get('text'))} | {_cell((slot or {}).get('value'))} |"
            for name, slot in case.slots.items()))
    else:
        lines.append("**Slots:** none collected")
    lines.append(f"**Summary:** {case.summary or '-'}")
    return "\n\n".join(lines)


def _cell(value: Any) -> str:
    return "-" if value is None or value == "" else str(value).replace("|", "\\|").replace("\n", " ")


class DeskHandlers:
    """The Desk tab's event handlers, as plain methods so they can be tested without a browser.

    Every handler that changes something returns ``(status line, *view)``; :meth:`view` is
    ``(rows, header, transcript, details, shown)``, where ``shown`` remembers what the page
    displays so the auto-refresh sends only what changed (a transcript re-sent every few seconds
    would jump while the person reads it).

    Args:
        store: The assistant's conversation store.
        clock: Now, as an aware datetime (tests pass a fixed one).
    """

    def __init__(self, store: DeskStore, clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.store = store
        self.clock = clock

    # --- what is shown -----------------------------------------------------------------------
    def rows(self) -> list[list[Any]]:
        """The desk's list, one row per open or assigned case (see :data:`COLUMNS`)."""
        now = self.clock()
        return [[c.id, age(c.created_at, now), c.sentiment or "-", c.flow or "-", who(c), c.handoff_reason or "-",
                 c.summary or ""] for c in self.store.desk_cases()]

    def case_view(self, case_id: int | None) -> tuple[str, list[dict[str, str]], str]:
        """(header, transcript messages, details) of one case."""
        if case_id is None:
            return "Pick a case in the list to see its conversation.", [], ""
        case = self.store.case(int(case_id))
        turns = self.store.turns(case.session_id)
        if case.held_by:
            state = f"**{case.held_by}** holds the conversation: the assistant is silent"
        elif case.status in ("open", "assigned"):
            state = "the assistant answers the customer"
        else:
            state = "closed"
        assignee = f" to {case.assignee}" if case.assignee and case.status == "assigned" else ""
        header = (f"### Case #{case.id} · {case.status}{assignee}\n"
                  f"{state} · conversation `{case.session_id}` · opened {case.created_at}")
        return header, transcript(turns), case_details(case, turns)

    def view(self, case_id: int | None, shown: dict | None = None) -> tuple[Any, ...]:
        """The list and the case, each as ``gr.skip()`` when the page already shows it."""
        shown = dict(shown or {})
        rows = self.rows()
        try:
            header, messages, details = self.case_view(case_id)
        except LookupError as exc:
            header, messages, details = _sentence(str(exc)), [], ""
        table = {"headers": COLUMNS, "data": rows}
        out: list[Any] = [table if shown.get("rows") != rows else gr.skip()]
        case = [header, messages, details]
        out += case if shown.get("case") != case else [gr.skip()] * 3
        return (*out, {"rows": rows, "case": case})

    def refresh(self, case_id: int | None, shown: dict | None) -> tuple[Any, ...]:
        """The timer's tick and the Refresh button: the list and the open case, if they changed."""
        return self.view(case_id, shown)

    def pick(self, shown: dict | None, evt: gr.SelectData) -> tuple[Any, ...]:
        """A click on a row of the list opens that case: ``(case id, *view)``."""
        row = getattr(evt, "row_value", None) or []
        try:
            case_id = int(row[0])
        except (IndexError, TypeError, ValueError):
            return (gr.skip(), *self.view(None, shown))
        return (case_id, *self.view(case_id, shown))

    # --- what a person does -------------------------------------------------------------------
    def take(self, case_id: int | None, name: str | None, shown: dict | None, request: gr.Request | None = None) -> tuple[Any, ...]:
        """Take the case: assigned to this person, who holds its conversation."""
        def act(person: str | None) -> str:
            case = self.store.take_case(int(case_id), _need(person))
            return (f"You hold case #{case.id}: the assistant is silent in this conversation until you hand it "
                    "back or resolve the case.")

        return self._act(case_id, shown, act, person_name(request, name))

    def reply(self, case_id: int | None, text: str | None, name: str | None, shown: dict | None,
              request: gr.Request | None = None) -> tuple[Any, ...]:
        """Send a reply to the customer; returns ``(status, *view, reply box)``."""
        sent = False

        def act(person: str | None) -> str:
            nonlocal sent
            case = self.store.reply_to_case(int(case_id), (text or "").strip(), person=_need(person))
            sent = True
            if case.held_by:
                return "Sent: the customer sees it in their chat."
            return ("Sent: the customer sees it in their chat. The assistant still answers them too; "
                    "Take the case to answer alone.")

        out = self._act(case_id, shown, act, person_name(request, name))
        return (*out, "" if sent else gr.skip())  # the box keeps a reply that was not sent

    def hand_back(self, case_id: int | None, shown: dict | None) -> tuple[Any, ...]:
        """Give the conversation back to the assistant (the case stays assigned until resolved)."""
        def act(_: str | None) -> str:
            case = self.store.hand_back(int(case_id))
            return (f"The assistant answers case #{case.id}'s conversation again; the case stays assigned to "
                    f"{case.assignee or 'nobody'} until resolved.")

        return self._act(case_id, shown, act, None)

    def resolve(self, case_id: int | None, shown: dict | None) -> tuple[Any, ...]:
        """Resolve the case (a held conversation goes back to the assistant)."""
        def act(_: str | None) -> str:
            case = self.store.set_status(int(case_id), "resolved")
            return f"Case #{case.id} is resolved."

        return self._act(case_id, shown, act, None)

    def _act(self, case_id: int | None, shown: dict | None, act: Callable[[str | None], str],
             person: str | None) -> tuple[Any, ...]:
        if case_id is None:
            return (PICK_FIRST, *self.view(None, shown))
        try:
            status = act(person)
        except (ValueError, LookupError) as exc:  # a refusal the person can act on: one sentence
            status = _sentence(str(exc))
        except Exception as exc:  # noqa: BLE001 - the page shows a sentence, never a traceback
            from finetune.errors import describe_error

            logger.exception("a desk action failed")
            status = f"Could not do that ({hide_paths(describe_error(exc))}). Please try again."
        return (status, *self.view(case_id, shown))


def person_name(request: gr.Request | None, typed: str | None) -> str | None:
    """Who acts: the logged-in user with ``--auth`` (the typed name cannot change it), else the typed name."""
    logged_in = getattr(request, "username", None) if request is not None else None
    name = logged_in or " ".join((typed or "").split())
    return name or None


def _sentence(text: str) -> str:
    text = text.strip().rstrip(".")
    return text[:1].upper() + text[1:] + "."


def _need(person: str | None) -> str:
    if not person:
        raise ValueError("Type your name first: the customer sees it with your replies")
    return person


def _whoami(request: gr.Request) -> Any:
    """With a login the name box shows the user name, read-only; without one it stays for typing."""
    name = getattr(request, "username", None)
    return gr.update(value=name, interactive=False) if name else gr.skip()


def build_desk_tab(store: DeskStore | None, tab: Any = None, tabs: Any = None) -> DeskHandlers | None:
    """Lay out the Desk tab inside the current ``gr.Blocks``/``gr.Tab`` context.

    Args:
        store: The assistant's conversation store; None (``--store none``) shows why there is no desk.
        tab: The ``gr.Tab``; opening it refreshes the list and fills in the logged-in name.
        tabs: The page's ``gr.Tabs``: the list refreshes itself only while the Desk tab is shown
            (a customer's page on the Chat tab asks nothing of the desk). Without it, always.
    """
    if store is None:
        gr.Markdown(NO_STORE, elem_id="desk-unavailable")
        return None
    handlers = DeskHandlers(store)
    selected = gr.State(None)  # the open case's id
    shown = gr.State({})
    with gr.Row():
        name = gr.Textbox(label="Your name", placeholder="the customer sees it with your replies", elem_id="desk-name",
                          scale=3, max_length=200)
        refresh = gr.Button("Refresh", elem_id="desk-refresh", scale=1)
    status = gr.Markdown(elem_id="desk-status")
    table = gr.Dataframe(headers=COLUMNS, value=[], label="Open handoffs (most upset first, then newest); click one",
                         interactive=False, wrap=True, elem_id="desk-cases")
    with gr.Row():
        with gr.Column(scale=3):
            header = gr.Markdown("Pick a case in the list to see its conversation.", elem_id="desk-case")
            conversation = gr.Chatbot(label="Conversation", elem_id="desk-transcript", height=380, buttons=["copy"],
                                      group_consecutive_messages=False)  # the assistant's and a person's apart
            reply_box = gr.Textbox(label="Reply to the customer", lines=2, elem_id="desk-reply", max_length=2000)
            with gr.Row():
                take = gr.Button("Take", variant="primary", elem_id="desk-take")
                send = gr.Button("Send reply", elem_id="desk-send")
                back = gr.Button("Hand back to assistant", elem_id="desk-handback")
                resolve = gr.Button("Resolve", elem_id="desk-resolve")
        with gr.Column(scale=2):
            details = gr.Markdown(elem_id="desk-details")
    view = [table, header, conversation, details, shown]
    private = {"api_visibility": "private"}
    quiet = {**private, "show_progress": "hidden"}  # no loading veil over the list every few seconds

    refresh.click(handlers.refresh, [selected, shown], view, **private)
    # The transcript's trash button only empties the display: forget what is shown so it comes back.
    conversation.clear(lambda: {}, None, [shown], **private)
    timer = gr.Timer(REFRESH_S, active=tabs is None)
    timer.tick(handlers.refresh, [selected, shown], view, **quiet)
    table.select(handlers.pick, [shown], [selected, *view], **private)
    take.click(handlers.take, [selected, name, shown], [status, *view], **private)
    send.click(handlers.reply, [selected, reply_box, name, shown], [status, *view, reply_box], **private)
    back.click(handlers.hand_back, [selected, shown], [status, *view], **private)
    resolve.click(handlers.resolve, [selected, shown], [status, *view], **private)
    if tab is not None:
        tab.select(_whoami, None, [name], **private)
        tab.select(handlers.refresh, [selected, shown], view, **quiet)
    if tabs is not None:
        label = getattr(tab, "label", "Desk")

        def desk_shown(evt: gr.SelectData) -> gr.Timer:
            return gr.Timer(active=evt.value == label)

        tabs.select(desk_shown, None, [timer], **private)
    return handlers
