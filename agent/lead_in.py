"""The "lead-in" style of reply for small local models: the model writes one sentence, the facts
come verbatim from the knowledge base.

Measured on the shipped SmolLM2-135M-Instruct (``agent bench assistant --style draft``; numbers in
BENCHMARKS.md), the guard replaced every full draft (10 of 10: key facts dropped or numbers
invented) and a draft took about 10 s on a 2-core CPU; asked for one sentence acknowledging the
request, with four examples, it writes one in about a second.
So with the local model the reply is: the model's acknowledgement, checked by
:func:`check_lead_in` (grounded, and acknowledgement or empathy only: see
:mod:`agent.lead_in_rules`), then the retrieved answer, lightly templated. Bigger models (``hf:`` or
``openai:``) compose the whole reply in the ``draft`` style under the full grounding guard.
"""

from __future__ import annotations

import re

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from agent.grounding import MAX_MESSAGE_CHARS, ungrounded
from agent.lead_in_rules import claim_reasons

LEAD_IN_PROMPT = ("You are a bank assistant. Reply with one short sentence that restates the customer's "
                  "request. Never answer it.")
# Few-shot pairs: the 135M model follows examples far better than instructions.
EXAMPLES: tuple[tuple[str, str], ...] = (
    ("My card was declined at the supermarket",
     "I'm sorry your card was declined at the supermarket, let's get that sorted."),
    ("How do I order a physical card?", "Happy to help you order a physical card."),
    ("I sent money to my friend but she hasn't got it",
     "I understand you're waiting for your friend to receive your transfer."),
    ("What's the exchange rate for euros?", "Good question about our euro exchange rate."),
)
MAX_WORDS = 25
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)|\n")
# What an acknowledgement must not do: give advice or steps, send people elsewhere, talk about
# itself, refuse, or ask something back (the answer follows immediately).
_NOT_AN_ACKNOWLEDGEMENT = re.compile(
    r"\b(?:you can|you could|you should|you'll need|you will need|you need|go to|click|tap|visit|website|"
    r"online|store|call|contact|email|app|settings?|as an ai|ai\b|chatbot|language model|assistant|"
    r"i can't|i cannot|i'm unable|i am unable|unable|don't have|do not have|sorry for your loss|"
    r"it (?:takes|costs)|usually|typically|around|about \d|fees?|charges?|free|days?|hours?|weeks?|"
    r"we (?:can|will|could|would)|we'll|we'd|if you'd like|arrange|deliver\w*|refund\w*)\b|\?",
    re.I)


def lead_in_messages(message: str) -> list[BaseMessage]:
    """Prompt asking for one sentence that acknowledges ``message``."""
    messages: list[BaseMessage] = [SystemMessage(LEAD_IN_PROMPT)]
    for user, reply in EXAMPLES:
        messages += [HumanMessage(user), AIMessage(reply)]
    messages.append(HumanMessage((message or "").strip()[:MAX_MESSAGE_CHARS] or "(empty message)"))
    return messages


def first_sentence(text: str) -> str | None:
    """The text up to its first sentence end, or None while no sentence has ended."""
    match = _SENTENCE_END.search(text)
    return text[: match.start() + 1].strip() if match else None


def check_lead_in(sentence: str, sources_text: str, customer_message: str = "") -> tuple[str, ...]:
    """Why ``sentence`` cannot open the reply (empty tuple: it can)."""
    reasons = []
    words = re.findall(r"[^\W\d_]+", sentence)
    if not 2 <= len(words) <= MAX_WORDS:
        reasons.append(f"lead-in has {len(words)} words (want 2 to {MAX_WORDS})")
    if found := _NOT_AN_ACKNOWLEDGEMENT.search(sentence):
        reasons.append(f"lead-in gives advice, facts or questions ({found.group(0)!r})")
    if re.search(r"\d", sentence):
        reasons.append("lead-in contains a number")
    reasons += claim_reasons(sentence)  # acknowledgement and empathy only: no claim in words either
    reasons += [f"lead-in: {r}" for r in ungrounded(sentence, f"{sources_text}\n{customer_message}")]
    return tuple(dict.fromkeys(reasons))


def acceptable_so_far(partial: str) -> bool:
    """Whether a lead-in still being written may keep streaming: no advice, facts, claims or digits yet."""
    return not (_NOT_AN_ACKNOWLEDGEMENT.search(partial) or re.search(r"\d", partial)
                or claim_reasons(partial, partial=True))
