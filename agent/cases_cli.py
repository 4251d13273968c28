"""``agent cases`` (cases opened by handoffs) and ``agent conversations`` (export, retention).

Each command opens the store named by ``--store``, calls one store method and prints.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any

import typer

from agent.chat_cli import Store
from finetune.cli.console import echo_json, friendly_errors

cases_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
conversations_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]
CaseId = Annotated[int, typer.Argument(help="The case number.")]
Person = Annotated[str, typer.Option("--as", help="Your name, as the customer sees it with your replies.")]
Before = Annotated[str, typer.Option("--before", help="A date (YYYY-MM-DD) or ISO time, UTC: conversations last active before it.")]


def _store(where: str | None) -> Any:
    from agent.store import open_store

    store = open_store(where)
    if store is None:
        raise ValueError("--store none keeps no cases or conversations; give a store file or URL")
    return store


def _date(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--before {text!r} is not a date; give YYYY-MM-DD or an ISO time") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


@cases_app.command("list")
@friendly_errors
def list_cases(
    status: Annotated[str | None, typer.Option(help="Only these statuses, comma separated (open,assigned,resolved,cancelled).")] = None,
    json_output: Json = False, store: Store = None,
) -> None:
    """List cases, oldest first."""
    statuses = tuple(s.strip() for s in status.split(",") if s.strip()) if status else None
    found = _store(store).cases(statuses)
    if json_output:
        echo_json([c.to_dict() for c in found])
        return
    if not found:
        typer.echo("no cases")
    for c in found:
        typer.echo(f"#{c.id}  {c.status:<9} {_who(c):<14} {c.updated_at}  session {c.session_id}  {c.summary or ''}")


def _who(case: Any) -> str:
    """Who works on a case: its assignee, marked when they hold the conversation now."""
    if case.held_by:
        return f"{case.held_by} (holds)"
    return case.assignee or "-"


@cases_app.command("show")
@friendly_errors
def show_case(case_id: CaseId, json_output: Json = False, store: Store = None) -> None:
    """One case with its conversation."""
    opened = _store(store)
    case = opened.case(case_id)
    transcript = [t.to_dict() for t in opened.turns(case.session_id)]
    if json_output:
        echo_json({**case.to_dict(), "transcript": transcript})
        return
    typer.echo(f"case #{case.id} ({case.status}) · session {case.session_id} · opened {case.created_at}")
    typer.echo(f"reason: {case.handoff_reason} · sentiment: {case.sentiment or '-'}")
    held = f" · held by {case.held_by} (the assistant is silent)" if case.held_by else ""
    typer.echo(f"assignee: {case.assignee or '-'}{held}")
    typer.echo(f"summary: {case.summary}")
    for turn in transcript:
        if turn["role"] == "customer":
            typer.echo(f"customer> {turn['text']}")
            typer.echo(f"qagent>   {turn['reply']}  [{turn['route']}]")
        else:
            author = f" ({turn['author']})" if turn.get("author") else ""
            typer.echo(f"{turn['role']}{author}> {turn['text']}")


@cases_app.command("reply")
@friendly_errors
def reply_case(case_id: CaseId, text: Annotated[str, typer.Argument(help="What to tell the customer.")],
               person: Annotated[str | None, typer.Option("--as", help="Your name, shown to the customer in the web chat.")] = None,
               store: Store = None) -> None:
    """Reply to the customer as a person; the web chat shows it within seconds, the terminal chat when they next write."""
    case = _store(store).reply_to_case(case_id, text, person=person)
    typer.echo(f"case #{case.id} is {case.status}; the customer sees the reply in the web chat now, "
               "in the terminal chat when they next write")


@cases_app.command("take")
@friendly_errors
def take_case(case_id: CaseId, person: Person, store: Store = None) -> None:
    """Take a case: it is assigned to you and the assistant stays silent in its conversation until you hand it back."""
    case = _store(store).take_case(case_id, person)
    typer.echo(f"case #{case.id} is assigned to {case.assignee}, who holds its conversation: the assistant "
               f"stays silent there until 'agent cases handback {case.id}'")


@cases_app.command("handback")
@friendly_errors
def hand_back(case_id: CaseId, store: Store = None) -> None:
    """Hand the case's conversation back to the assistant (the case stays assigned until resolved)."""
    case = _store(store).hand_back(case_id)
    typer.echo(f"the assistant answers case #{case.id}'s conversation again; the case stays assigned to "
               f"{case.assignee or 'nobody'} until resolved")


@cases_app.command("resolve")
@friendly_errors
def resolve_case(case_id: CaseId, store: Store = None) -> None:
    """Mark a case resolved (a held conversation goes back to the assistant)."""
    case = _store(store).set_status(case_id, "resolved")
    typer.echo(f"case #{case.id} is resolved")


@cases_app.command("cancel")
@friendly_errors
def cancel_case(case_id: CaseId, store: Store = None) -> None:
    """Cancel a case opened by mistake or withdrawn by the customer (a held conversation goes back to the assistant)."""
    case = _store(store).set_status(case_id, "cancelled")
    typer.echo(f"case #{case.id} is cancelled")


@conversations_app.command("export")
@friendly_errors
def export(before: Before, out: Annotated[Path | None, typer.Option("--out", help="JSONL file to write (default: stdout).")] = None,
           store: Store = None) -> None:
    """Write conversations last active before a date as JSONL (one conversation a line)."""
    records = _store(store).conversations_before(_date(before))
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    if out is None:
        typer.echo(lines, nl=False)
    else:
        out.write_text(lines, encoding="utf-8")
        typer.echo(f"wrote {len(records)} conversation(s) to {out}", err=True)


@conversations_app.command("purge")
@friendly_errors
def purge(before: Before, store: Store = None) -> None:
    """Delete conversations last active before a date (those with an open case are kept)."""
    deleted, kept = _store(store).purge(_date(before))
    typer.echo(f"deleted {deleted} conversation(s); kept {kept} with an open case")
