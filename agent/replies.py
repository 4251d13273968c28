"""The fixed replies of the routes that do not answer from the knowledge base.

They state no fees, amounts or times, so they never need the grounding guard, and they always
say what the customer can do next.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from agent.router import Decision

HELP_TOPICS = "cards, payments, transfers, top-ups, exchange rates, your account and identity checks"
EXAMPLES = ("Where is my new card?", "How do I top up by bank transfer?", "Why was my transfer declined?")


def intent_phrase(intent: str) -> str:
    """"card_payment_not_recognised" → "a card payment you don't recognise"-ish plain words."""
    words = re.sub(r"[_?]+", " ", intent).strip().lower()
    return words.replace("not recognised", "you don't recognise").replace("top up", "top-up")


def templated(decision: Decision, message: str, titles: dict[str, str] | None = None) -> str:
    """The reply for a ``clarify``, ``handoff``, ``out_of_scope`` or ``smalltalk`` decision.

    Args:
        decision: The router's decision.
        message: The customer's message (to tell a greeting from thanks or goodbye).
        titles: Knowledge-base title per intent, to phrase clarifying questions as questions.
    """
    titles = titles or {}
    route = decision.route
    if route == "clarify":
        if len(decision.options) >= 2:
            first, second = (_option(o, titles) for o in decision.options[:2])
            return f"Just to make sure I help with the right thing: is your question about {first}, or about {second}?"
        return (f"I didn't catch a question there. What can I help you with? I can help with {HELP_TOPICS}. "
                f"For example: “{EXAMPLES[0]}”")
    if route == "handoff":
        if "in a row" in decision.reason:
            return ("I'm sorry I haven't been able to help with this. I'm passing you to one of our team, "
                    "who can see this conversation, so you won't need to repeat yourself.")
        if "gave no usable detail" in decision.reason:
            return ("I'm sorry, I couldn't take down that detail. I'm passing this to one of our team with "
                    "what you've told me so far; they can see this conversation.")
        if "asked for a person" in decision.reason:
            return ("Of course. I'm passing you to one of our team now; they can see this conversation, "
                    "so you won't need to repeat yourself.")
        return ("I'm sorry this has happened. I'm passing you to one of our team now so a person can look "
                "into it with you. If you think someone else has used your card, freeze it now in "
                "Cards > Manage card > Freeze.")
    if route == "out_of_scope":
        return (f"Sorry, that's not something I can help with. I can answer questions about {HELP_TOPICS}. "
                f"For example: “{EXAMPLES[1]}”")
    if route == "smalltalk":
        lowered = (message or "").lower()
        if re.search(r"\b(?:thank|thanks|thx|ty|cheers|appreciated)\b", lowered):
            return "You're welcome! Is there anything else I can help you with?"
        if re.search(r"\b(?:bye|goodbye|see you|have a (?:nice|good|great) day|that'?s all)\b", lowered):
            return "Thanks for chatting with us. Have a good day!"
        return f"Hello! I'm Qagent Bank's assistant. I can help with {HELP_TOPICS}. What can I do for you?"
    raise ValueError(f"route {route!r} is answered from the knowledge base, not templated")


def _option(intent: str, titles: dict[str, str]) -> str:
    title = titles.get(intent)
    return f"“{title}”" if title else intent_phrase(intent)


def titles_by_intent(docs: Sequence[object]) -> dict[str, str]:
    """The first knowledge-base title for each intent."""
    out: dict[str, str] = {}
    for doc in docs:
        for intent in getattr(doc, "intents", ()):
            out.setdefault(intent, str(getattr(doc, "title", "")))
    return out
