"""``agent chat`` (a terminal conversation) and ``agent ask`` (one-shot or a file of messages).

Both load the models once, then hand every message to :class:`agent.assistant.Assistant`.
Loading messages and warnings go to stderr, so ``agent ask --json`` and ``--file`` output on
stdout stays machine-readable.
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer

from finetune.cli.console import echo_json, friendly_errors
from finetune.strict_json import dumps

Llm = Annotated[str, typer.Option("--llm", help="Reply model: local (SmolLM2-135M), hf:/path/to/model, or openai:URL:MODEL.")]
IndexDir = Annotated[Path | None, typer.Option("--index", help="Knowledge-base index from 'agent index build' (default: the shipped base).")]
Kb = Annotated[Path | None, typer.Option("--kb", help="A knowledge base (JSONL/CSV/Markdown) to index and answer from instead.")]
Intents = Annotated[Path | None, typer.Option("--intents", help="Intent model directory (default: shipped).")]
Entities = Annotated[Path | None, typer.Option("--entities", help="Entity tagger checkpoint or tagger ensemble folder (default: shipped).")]
Sentiment = Annotated[Path | None, typer.Option("--sentiment", help="Sentiment model directory (default: shipped).")]
Router = Annotated[Path | None, typer.Option("--router", help="Router thresholds JSON (default: agent/assets/router.json).")]
Backend = Annotated[str, typer.Option(help="Where the quantum heads run: exact, aer[:shots=N][,noise=fake_…][,readout=m3][,zne=1,3,5]; the intents model's calibration for that backend is used, if it has one.")]
MaxNewTokens = Annotated[int, typer.Option(help="Longest reply the local model may write, in tokens.")]
Threads = Annotated[int | None, typer.Option(help="CPU threads for the models (default: torch's choice; 1 is steadier on a busy machine).")]
Session = Annotated[str, typer.Option(help="Conversation id (memory is per session).")]
Store = Annotated[str | None, typer.Option("--store", help="Where conversations and cases are kept: a file, a sqlite:/// or postgresql+psycopg:// URL, or 'none' (default: $QAGENT_HOME/assistant.db).")]
Flows = Annotated[str | None, typer.Option("--flows", help="Flows file (JSON or YAML) that collects a case's details before opening it (default: the shipped banking flows; 'none': no flows).")]
Style = Annotated[str, typer.Option(help="Reply style: auto (lead_in for the local model, else draft), draft (the model writes the reply) or lead_in (one sentence from the model, then the answer verbatim).")]
IndexSha256 = Annotated[str | None, typer.Option("--expect-sha256", metavar="HEX", help="Refuse to start unless the --index's meta.json has this sha256 (printed by 'agent index build' and 'agent index digest').")]


def check_index_pin(index: Path | None, expect_sha256: str | None) -> None:
    """Refuse to start unless the ``--index`` is the pinned one (checked before any model loads)."""
    if expect_sha256 is None:
        return
    if index is None:
        raise typer.BadParameter("pins an index built with 'agent index build': give it with --index DIR",
                                 param_hint="--expect-sha256")
    from retrieval.index import verified_meta

    verified_meta(index, expect_sha256)


def describe_reply(reply: Any) -> str:
    """One line under a reply: route, reason, intent and sources."""
    parts = [f"route: {reply.route} ({reply.reason})"]
    if reply.intent:
        parts.append(f"intent: {reply.intent}" + (f" {reply.confidence:.2f}" if reply.confidence else ""))
    if reply.entities:
        parts.append("entities: " + ", ".join(f"{e['type']}={e['text']!r}" for e in reply.entities))
    if getattr(reply, "flow", None):
        filled = ", ".join(f"{k}={v['text']!r}" for k, v in reply.slots.items())
        parts.append(f"flow: {reply.flow}" + (f" [{filled}]" if filled else "")
                     + (f" asking for {reply.awaiting}" if reply.awaiting else ""))
    if getattr(reply, "case_id", None) is not None:
        parts.append(f"case: {reply.case_id}")
    used = [s["id"] for s in reply.sources if s.get("used")]
    if used:
        parts.append("sources: " + ", ".join(used))
    if reply.guard_fired:
        parts.append("guard: draft replaced by the knowledge-base answer")
    return " · ".join(parts)


@friendly_errors
def chat(
    llm: Llm = "local", index: IndexDir = None, kb: Kb = None, intents: Intents = None, entities: Entities = None,
    sentiment: Sentiment = None, router: Router = None, backend: Backend = "exact",
    max_new_tokens: MaxNewTokens = 96, threads: Threads = None, session: Session = "terminal", style: Style = "auto", store: Store = None,
    flows: Flows = None,
    details: Annotated[bool, typer.Option("--details/--no-details", help="Show route, intent and sources under each reply.")] = False,
    expect_sha256: IndexSha256 = None,
) -> None:
    """Chat with the assistant in the terminal (type /help for commands)."""
    from agent.assistant import AssistantSettings, load_assistant

    check_index_pin(index, expect_sha256)
    assistant = load_assistant(AssistantSettings(
        llm=llm, index_dir=index, kb=kb, intents_dir=intents, entities_dir=entities, sentiment_dir=sentiment,
        router_config=router, backend=backend, max_new_tokens=max_new_tokens, style=style, threads=threads,
        store=store, flows=flows))
    typer.echo("qagent: ask about your cards, payments, transfers or account. /help for commands, /quit to leave.")
    show = details
    while True:
        try:
            message = input("you> ")
        except EOFError:
            typer.echo("")
            return
        command = message.strip().lower()
        if command in ("/quit", "/exit", "/q"):
            return
        if command == "/help":
            typer.echo("/details  show or hide route, intent and sources\n/reset    start a new conversation\n/quit     leave")
            continue
        if command == "/details":
            show = not show
            typer.echo(f"details {'on' if show else 'off'}")
            continue
        if command == "/reset":
            assistant.reset(session)
            typer.echo("new conversation")
            continue
        stream_reply(assistant, message, session, sys.stdout, show)


def stream_reply(assistant: Any, message: str, session: str, out: TextIO, details: bool) -> Any:
    """Print a reply as it streams; when the guard replaces the draft, say so and print the answer."""
    pending = getattr(assistant, "pending_replies", None)
    for text in pending(session) if pending is not None else ():
        out.write(f"team> {text}\n")  # a person's reply on the conversation's case, seen now
    reply, started = None, False
    for event in assistant.stream(message, session):
        # The prompt comes with the first words: while a person holds the conversation the
        # assistant may say nothing at all, and then no empty "qagent>" line is printed.
        if event.kind in ("token", "replaced") and not started:
            out.write("qagent> ")
            started = True
        if event.kind == "token":
            out.write(event.text)
        elif event.kind == "replaced":
            out.write("\n[checked against our help pages; here is the exact answer]\n" + event.text)
        else:
            reply = event.reply
        out.flush()
    if started:
        out.write("\n")
    if details and reply is not None:
        out.write(f"  ({describe_reply(reply)})\n")
    out.flush()
    return reply


@friendly_errors
def ask(
    message: Annotated[str | None, typer.Argument(help="The customer's message (or use --file).")] = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="Answer one message per line (lines end at \\n only): plain text, or JSONL with a 'text' field ('-' for stdin).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the reply as JSON (always on with --file).")] = False,
    llm: Llm = "local", index: IndexDir = None, kb: Kb = None, intents: Intents = None, entities: Entities = None,
    sentiment: Sentiment = None, router: Router = None, backend: Backend = "exact",
    max_new_tokens: MaxNewTokens = 96, threads: Threads = None, style: Style = "auto", store: Store = None,
    flows: Flows = None,
    session: Annotated[str | None, typer.Option(help="Conversation id to continue from the store (default: a new one each run; with --file, ID-LINE per line).")] = None,
    expect_sha256: IndexSha256 = None,
) -> None:
    """Answer one message, or every line of a file, and print the reply (JSON with --json or --file)."""
    from agent.assistant import AssistantSettings, load_assistant

    # A fresh id per run by default: a stored conversation is only continued when asked for.
    session = session or f"ask-{uuid.uuid4().hex[:8]}"
    if (message is None) == (file is None):
        raise ValueError("give a message or --file FILE, not both and not neither")
    check_index_pin(index, expect_sha256)
    lines = None
    if file is not None:
        lines = _read_lines(file)  # a missing or binary file fails before the models load
    settings = AssistantSettings(
        llm=llm, index_dir=index, kb=kb, intents_dir=intents, entities_dir=entities, sentiment_dir=sentiment,
        router_config=router, backend=backend, max_new_tokens=max_new_tokens, style=style, threads=threads,
        store=store, flows=flows)
    assistant = load_assistant(settings, quiet=json_output or file is not None)
    if lines is None:
        reply = assistant.respond(message or "", session)
        if json_output:
            echo_json(reply.to_dict())
        else:
            typer.echo(reply.text)
            typer.echo(f"  ({describe_reply(reply)})", err=True)
        return
    answered = failed = 0
    for number, line, unreadable in lines:
        record = {"error": unreadable} if unreadable else _parse_line(line)
        if "error" in record:
            failed += 1
            result = {"line": number, "error": record["error"]}
        else:
            reply = assistant.respond(record["text"], str(record.get("session_id") or f"{session}-{number}"))
            result = {"line": number, **({"id": record["id"]} if "id" in record else {}), **reply.to_dict()}
            answered += 1
        sys.stdout.write(_jsonl(result) + "\n")
        sys.stdout.flush()
    typer.echo(f"answered {answered} message(s), {failed} line(s) could not be read", err=True)


def _read_lines(file: Path) -> list[tuple[int, str, str | None]]:
    """``(line number, text, why it cannot be read)`` for every non-blank line of ``file``.

    Lines end at ``\\n`` (or ``\\r\\n``) only: U+2028, U+0085 and the other characters that
    ``str.splitlines`` breaks on may sit inside a message or a JSON string. Each line is decoded on
    its own, so one bad byte costs its line, not the file; a file with NUL bytes or no readable line
    at all is refused (it is not text, e.g. UTF-16 or an image).
    """
    if str(file) == "-":
        raw = sys.stdin.buffer.read()
        where = "standard input"
    else:
        if not file.is_file():
            raise FileNotFoundError(f"{file} not found (give a text or JSONL file with one message per line)")
        raw = file.read_bytes()
        where = str(file)
    lines, bad = [], []
    for number, data in enumerate(raw.removeprefix(b"\xef\xbb\xbf").split(b"\n"), start=1):
        data = data.removesuffix(b"\r")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad.append(number)
            lines.append((number, "", f"not UTF-8 (byte 0x{data[exc.start]:02x} at byte {exc.start + 1} of the "
                                     "line); save the file as UTF-8"))
            continue
        if text.strip():
            lines.append((number, text, None))
    if b"\x00" in raw or (bad and len(bad) == len(lines)):
        line = bad[0] if bad else raw[: raw.index(b"\x00")].count(b"\n") + 1
        raise ValueError(f"{where} is not UTF-8 text (bad bytes on line {line}); save it as UTF-8")
    return lines


def _jsonl(record: dict[str, Any]) -> str:
    """One JSON line (NaN as null); U+0085, U+2028 and U+2029 escaped so that no reader splits the record."""
    text = dumps(record, ensure_ascii=False)
    return text.replace("\x85", "\\u0085").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _parse_line(line: str) -> dict[str, Any]:
    """A plain-text line is the message; a line starting with '{' must be JSON with a 'text' string."""
    stripped = line.strip()
    if not stripped.startswith("{"):
        return {"text": stripped}
    try:
        record = json.loads(stripped)
    except json.JSONDecodeError as exc:
        return {"error": f"not valid JSON ({exc.msg} at column {exc.colno})"}
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        return {"error": "JSON line has no 'text' string field"}
    return record
