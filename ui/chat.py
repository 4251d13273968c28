"""The Chat tab: stream the assistant's reply and show why it answered the way it did.

Beside each reply the page shows the route and its reason, the intent with its confidence, the
entities highlighted in the customer's message and the knowledge-base sources (expandable). All
of that comes from the assistant's :class:`~agent.assistant.Reply`; this module only formats it.

Each browser session gets its own conversation id (a random uuid kept in ``gr.State``), so
several people chatting at once never see each other's history; "New conversation" forgets the
old one in the assistant's memory and starts a fresh id.

A person's replies on the conversation's case (the Desk tab, ``agent cases reply``) appear in the
chat within seconds, marked ``**Team (NAME):**``: a timer asks the store for replies not seen yet.
Two events write the chat then (a reply streaming, a person's reply arriving), so the page's
messages live in one list on the server (a ``gr.State``, shared by reference between a page's
events) that both extend, rather than in the chatbot's value, which each event would read as it
was when it was triggered and overwrite the other's messages with.
"""

from __future__ import annotations

import html
import logging
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import gradio as gr  # at module level: Gradio reads the gr.LikeData hint of the like handler

from ui.desk import team_label
from ui.feedback import FeedbackLog

logger = logging.getLogger("ui.chat")

EXAMPLES = (
    "My card hasn't arrived yet, what should I do?",
    "How do I freeze my card?",
    "How long does a transfer to Europe take?",
    "I sent 50 pounds to Anna yesterday but she hasn't received it",
    "I was charged twice for the same purchase",
    "I want to talk to a human",
    "What's the weather like in Paris?",
)
MAX_MESSAGE_CHARS = 2000  # the textbox refuses more; the assistant trims long pastes itself as well
POLL_S = 2.0  # how soon a person's reply shows up; each tick is one small query per open chat


class ChatAssistant(Protocol):
    """What the Chat tab needs of :class:`agent.assistant.Assistant`."""

    def stream(self, message: str, session_id: str = "default") -> Iterable[Any]: ...

    def reset(self, session_id: str) -> None: ...


class PersonReplies(Protocol):
    """Where people's replies come from (:class:`agent.store.ConversationStore`)."""

    def pending_person_turns(self, session_id: str) -> list[Any]: ...


def reply_details(reply: dict[str, Any] | None, message: str) -> tuple[str, dict[str, Any] | None, str]:
    """The side panel for one reply: route/intent Markdown, highlighted message, sources HTML.

    Args:
        reply: ``Reply.to_dict()``, or None while the reply is being written.
        message: The customer's message (entities are offsets into it).
    """
    if reply is None:
        return "_Thinking…_", None, ""
    lines = [f"**Route:** `{reply.get('route')}`" + (f" — {reply['reason']}" if reply.get("reason") else "")]
    if reply.get("intent"):
        lines.append(f"**Intent:** `{reply['intent']}` ({float(reply.get('confidence') or 0.0):.0%} confidence)")
    else:
        lines.append("**Intent:** none")
    sentiment = reply.get("sentiment")
    if sentiment:
        lines.append(f"**Sentiment:** {sentiment.get('label')} ({float(sentiment.get('score', 0.0)):.0%})")
    if reply.get("guard_fired"):
        lines.append("**Grounding guard:** rejected the generated draft; the reply is the knowledge-base answer.")
    timings = reply.get("timings") or {}
    if timings:
        lines.append("**Timings:** " + " · ".join(f"{k.removesuffix('_s').replace('_', ' ')} {float(v):.2f} s" for k, v in timings.items()))
    highlighted = {
        "text": message,
        "entities": [
            {"entity": e["type"], "start": int(e["start"]), "end": int(e["end"])}
            for e in reply.get("entities") or []
            # Offsets come from the model; one outside the message would break the highlighting.
            if 0 <= int(e["start"]) < int(e["end"]) <= len(message)
        ],
    }
    return "\n\n".join(lines), highlighted, sources_html(reply.get("sources") or [])


def sources_html(sources: list[dict[str, Any]]) -> str:
    """The knowledge-base entries a reply used, each an expandable ``<details>`` block."""
    if not sources:
        return "<p class='qa-no-sources'>No knowledge-base sources for this reply.</p>"
    blocks = []
    for source in sources:
        title = html.escape(str(source.get("title") or source.get("id") or "source"))
        ident = html.escape(str(source.get("id", "")))
        score = float(source.get("score") or 0.0)
        text = html.escape(str(source.get("text", "")))
        # The assistant retrieves a few candidates and answers from the best ("used") one.
        used = source.get("used")
        role = "" if used is None else (" · <b>used for this reply</b>" if used else " · candidate")
        blocks.append(
            f"<details class='qa-source'{' open' if used else ''}><summary><b>{title}</b> "
            f"<small>{ident} · score {score:.2f}{role}</small></summary><p>{text}</p></details>"
        )
    return "\n".join(blocks)


class ChatHandlers:
    """The Chat tab's event handlers, as plain methods so they can be tested without a browser.

    Args:
        assistant: The loaded assistant (shared by all sessions; it keys memory by session id).
        feedback: Where thumbs up/down go.
        replies: People's replies to show (the assistant's store); None: no person ever replies.
    """

    def __init__(self, assistant: ChatAssistant, feedback: FeedbackLog, replies: PersonReplies | None = None) -> None:
        self.assistant = assistant
        self.feedback = feedback
        self.replies = replies
        self._lock = threading.Lock()
        self._streaming: set[str] = set()  # sessions whose reply is being written (the poll waits)

    def person_messages(self, session_id: str) -> list[dict[str, str]]:
        """People's replies this conversation has not shown yet, as chat messages (marked seen)."""
        if self.replies is None:
            return []
        return [{"role": "assistant", "content": f"{team_label(t.author)} {t.text}"}
                for t in self.replies.pending_person_turns(session_id)]

    def poll(self, history: list[dict[str, Any]] | None, session_id: str | None) -> Any:
        """The timer: append people's new replies to the page's messages; the chat to show, or
        ``gr.skip()`` when nothing arrived (or a reply is streaming: it shows them when it starts)."""
        if history is None or not session_id or self.replies is None:
            return gr.skip()
        with self._lock:
            if session_id in self._streaming:
                return gr.skip()
            arrived = self.person_messages(session_id)
            history += arrived  # in place: the page's list, which a reply starting next extends
        return list(history) if arrived else gr.skip()

    @contextmanager
    def _writing(self, session_id: str) -> Iterator[None]:
        with self._lock:
            self._streaming.add(session_id)
        try:
            yield
        finally:
            with self._lock:
                self._streaming.discard(session_id)

    def respond(
        self, message: str, history: list[dict[str, Any]] | None, session_id: str | None, turns: dict | None
    ) -> Iterator[tuple]:
        """Stream one reply: yields (history, textbox, session id, turns, route, entities, sources).

        ``turns`` maps the chat position of each assistant reply to what the customer asked and
        the full reply, so a thumbs up/down can be saved with everything a reviewer needs.
        ``history`` is extended in place (the page's message list, see the module).
        """
        history = history if history is not None else []
        turns = dict(turns or {})
        message = (message or "").strip()
        if not message:  # Enter on an empty box: leave the page as it is
            yield tuple(gr.skip() for _ in range(7))
            return
        session_id = session_id or uuid.uuid4().hex
        with self._writing(session_id):
            yield from self._respond(message, history, session_id, turns)

    def _respond(self, message: str, history: list[dict[str, Any]], session_id: str, turns: dict) -> Iterator[tuple]:
        # A person's replies written since the last poll come before the message, as they were sent.
        history += self.person_messages(session_id)
        history += [{"role": "user", "content": message}, {"role": "assistant", "content": ""}]
        at = len(history) - 1  # the reply's place
        details = reply_details(None, message)
        yield list(history), "", session_id, dict(turns), *details
        try:
            for event in self.assistant.stream(message, session_id):
                if event.kind == "token":
                    history[at] = {"role": "assistant", "content": history[at]["content"] + event.text}
                elif event.kind == "replaced":  # the guard threw the draft away: show its replacement
                    history[at] = {"role": "assistant", "content": event.text}
                elif event.kind == "done" and event.reply is not None:
                    reply = event.reply.to_dict()
                    details = reply_details(reply, message)
                    if reply["text"]:
                        history[at] = {"role": "assistant", "content": reply["text"]}
                        turns[at] = {"message": message, "reply": reply, "turn": len(turns)}
                    else:  # a person holds the conversation and the assistant says nothing: no empty bubble
                        del history[at]
                yield list(history), "", session_id, dict(turns), *details
        except Exception as exc:  # a chat page shows a sentence, never a traceback
            from finetune.errors import describe_error as describe
            from ui.messages import hide_paths

            logger.exception("the assistant failed on a message")
            history[at] = {
                "role": "assistant",
                "content": f"Sorry, something went wrong on our side ({hide_paths(describe(exc))}). Please try again.",
            }
            yield list(history), "", session_id, dict(turns), "**Route:** error", None, ""

    def new_conversation(self, session_id: str | None, history: list[dict[str, Any]] | None = None) -> tuple:
        """Forget this browser tab's conversation; returns cleared (history, textbox, session, turns, panel...)."""
        if session_id:
            self.assistant.reset(session_id)
        if history is not None:
            history.clear()  # in place: the page's message list
        return [], "", None, {}, "", None, "", ""

    def rate(self, turns: dict | None, session_id: str | None, index: Any, liked: Any) -> str:
        """Save a thumbs up/down on the reply at chat position ``index``; returns a status line."""
        position = index[0] if isinstance(index, (list, tuple)) else index
        turn = (turns or {}).get(position)
        if turn is None or liked not in (True, False):
            return "Only the assistant's replies can be rated."
        self.feedback.record(
            liked=bool(liked), message=turn["message"], reply=turn["reply"],
            session_id=session_id or "", turn=turn["turn"],
        )
        return f"Thanks, your {'👍' if liked else '👎'} was saved for review."


def build_chat_tab(assistant: ChatAssistant, feedback: FeedbackLog, replies: PersonReplies | None = None) -> None:
    """Lay out the Chat tab inside the current ``gr.Blocks``/``gr.Tab`` context.

    Args:
        assistant: The loaded assistant.
        feedback: Where thumbs up/down go.
        replies: People's replies to show in the chat (the assistant's store); None for none.
    """
    handlers = ChatHandlers(assistant, feedback, replies)
    session = gr.State(None)
    turns = gr.State({})
    messages = gr.State([])  # the page's chat, shared by its events (see the module)
    with gr.Row():
        with gr.Column(scale=3):
            chatbot = gr.Chatbot(
                label="Qagent Bank assistant", elem_id="chat", height=460,
                feedback_options=("Like", "Dislike"),
                buttons=["copy", "copy_all"],  # no "share": it would post the chat to the internet
                placeholder="Ask about cards, payments, transfers, top-ups or your account.",
                group_consecutive_messages=False,  # a person's reply is a message of its own, not the assistant's
            )
            message = gr.Textbox(
                label="Your message", placeholder="Type a question and press Enter",
                elem_id="message", max_length=MAX_MESSAGE_CHARS, autofocus=True,
            )
            with gr.Row():
                send = gr.Button("Send", variant="primary", elem_id="send")
                new = gr.Button("New conversation", elem_id="new-conversation")
            gr.Examples(examples=[[e] for e in EXAMPLES], inputs=[message], label="Try one of these")
            rated = gr.Markdown(elem_id="feedback-status")
        with gr.Column(scale=2):
            route = gr.Markdown(elem_id="route-info", label="Route")
            entities = gr.HighlightedText(
                label="Entities in your message", elem_id="entities", show_legend=True, combine_adjacent=False,
            )
            with gr.Accordion("Knowledge-base sources", open=True, elem_id="sources-box"):
                sources = gr.HTML(elem_id="sources")

    outputs = [chatbot, message, session, turns, route, entities, sources]
    # One reply generates at a time across all sessions and both entry points (one shared
    # concurrency id, limit 1): the CPU model gains nothing from parallel generation, and the
    # queue keeps each session's turns in order while other sessions wait their turn.
    shared = {"concurrency_id": "assistant", "concurrency_limit": 1}
    for trigger in (message.submit, send.click):
        trigger(handlers.respond, [message, messages, session, turns], outputs,
                api_name="respond", api_visibility="private", **shared)
    # A plain, documented endpoint for programmatic clients (gradio_client): same handler.
    gr.api(_api_chat(handlers), api_name="chat", **shared)
    new.click(handlers.new_conversation, [session, messages], [*outputs, rated], api_visibility="private")
    # The chat window's own trash button must forget the conversation too, not just the display.
    chatbot.clear(handlers.new_conversation, [session, messages], [*outputs, rated], api_visibility="private")
    if replies is not None:
        # Not in the assistant's queue: a poll is one small query and must not wait for a reply being written.
        gr.Timer(POLL_S).tick(handlers.poll, [messages, session], [chatbot], api_visibility="private",
                              show_progress="hidden", concurrency_limit=None)

    chatbot.like(_like_handler(handlers), [turns, session], [rated], api_visibility="private")


def _like_handler(handlers: ChatHandlers):
    def on_like(turns_value: dict, session_value: str | None, like: gr.LikeData) -> str:
        return handlers.rate(turns_value, session_value, like.index, like.liked)

    return on_like


def _api_chat(handlers: ChatHandlers):
    """``/chat`` for gradio_client: (message, session id) → streamed (reply text so far, reply dict)."""

    def chat(message: str, session_id: str = "") -> Iterator[tuple[str, dict]]:
        """Send one message; streams the reply text, then the full reply (route, intent, sources...).

        Args:
            message: The customer's message.
            session_id: Reuse one id across calls to keep the conversation; empty starts a new one.
        """
        if not (message or "").strip():
            raise gr.Error("the message is empty")
        reply: dict = {}
        for history, _, session, turns, *_ in handlers.respond(message, [], session_id or None, {}):
            if turns:
                reply = {**next(iter(turns.values()))["reply"], "session_id": session}
            yield (history[-1]["content"] if history else ""), reply

    return chat
