"""A small classification set made only of what ships with qagent: which team a banking message is for.

* train: every title and answer sentence of the shipped knowledge base
  (``agent/assets/knowledge/banking.jsonl``, 447 sentences), labelled with the topic of its
  entry's first intent;
* validation and test: the opening messages of the scripted customer conversations
  (``eval/conversations.jsonl``) that name an intent and are not a knowledge-base sentence word
  for word, shuffled (seeded) and split in half.

So a model learns from help pages and is scored on customer messages it never saw. Topics group
the 77 BANKING77 intents by the words in their names (:data:`TOPICS`, first match wins), six
groups of 12 to 33 knowledge-base entries each: enough examples per class for a head trained
in seconds, few enough classes for a 4-qubit circuit.
"""

from __future__ import annotations

import random
from pathlib import Path

from agent.monitor.scoring import split_sentences
from eval.e2e import DEFAULT_CONVERSATIONS, load_conversations
from finetune.data.loaders import TextDataset, TextExample
from agent.shipped import KNOWLEDGE_BASE
from retrieval.documents import load_documents

NAME = "qagent-kb-topics"
# Order matters: "top_up_by_card_charge" is a top-up question, "transfer_fee_charged" a transfer one.
TOPICS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("top_ups", ("top_up", "topping_up", "transfer_into_account", "supported_cards_and_currencies", "cheque_or_cash")),
    ("transfers", ("transfer", "beneficiary", "receiving_money")),
    ("exchange_and_cash", ("exchange", "currency", "cash", "atm")),
    ("payments", ("payment", "charge", "refund", "statement", "declined")),
    ("cards", ("card", "pin", "contactless", "apple_pay", "visa")),
)
OTHER_TOPIC = "account"  # identity checks, passcode, phone, age, countries, personal details, closing


def topic_of(intent: str) -> str:
    """The team an intent belongs to (``card_arrival`` → ``cards``)."""
    name = intent.lower()
    for topic, words in TOPICS:
        if any(word in name for word in words):
            return topic
    return OTHER_TOPIC


def kb_topic_dataset(kb: str | Path | None = None, conversations: str | Path | None = None,
                     seed: int = 0) -> TextDataset:
    """Build the train/validation/test splits described in the module docstring.

    Args:
        kb: A knowledge base with ``intents`` (default: the shipped one).
        conversations: Scripted conversations (default: ``eval/conversations.jsonl``).
        seed: Shuffles the customer messages before they are split into validation and test.
    """
    docs = load_documents(kb or KNOWLEDGE_BASE, chunk_size=None)
    train = [TextExample(sentence, topic_of(doc.intents[0]))
             for doc in docs if doc.intents
             for sentence in (doc.title, *split_sentences(doc.text)) if sentence.strip()]
    if not train:
        raise ValueError(f"{kb or KNOWLEDGE_BASE} has no entries with intents to learn topics from")
    seen = {ex.text.strip().lower() for ex in train}  # a message that is a title word for word would be no test
    messages = [TextExample(c.turns[0].user, topic_of(c.turns[0].intent))
                for c in load_conversations(conversations or DEFAULT_CONVERSATIONS)
                if c.turns[0].intent and c.turns[0].user.strip() and c.turns[0].user.strip().lower() not in seen]
    if len(messages) < 2:
        raise ValueError("need at least 2 customer messages with an intent for validation and test")
    random.Random(seed).shuffle(messages)
    half = len(messages) // 2
    labels = sorted({ex.label for ex in train})
    return TextDataset(NAME, labels, train, messages[:half], messages[half:])
