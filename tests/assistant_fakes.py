"""Small stand-ins for the assistant's heavy parts (NLU, index, chat model), for unit tests only."""

from __future__ import annotations

import torch
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from agent.assistant import Assistant
from agent.compose import Composer
from agent.nlu import Understanding
from agent.router import Router, RouterConfig
from retrieval.documents import Document
from retrieval.index import Hit

CARD = Document(id="card-arrival-001", title="My card hasn't arrived yet. What should I do?",
                text="Standard delivery takes 3 to 5 working days. Track it in Cards > Track delivery.",
                intents=("card_arrival",), followups=("Can I use a virtual card while I wait?",))
PIN = Document(id="change-pin-001", title="How do I change my PIN?",
               text="Change your PIN at any UK ATM: insert your card and choose PIN change.", intents=("change_pin",))
INTENTS = {"where is my card": ("card_arrival", 0.97), "change my pin": ("change_pin", 0.95),
           "weather": ("out_of_scope", 0.9), "card thing": ("card_arrival", 0.45)}


class FakeNLU:
    """Looks the intent up by a phrase of the message; a vector so the index is searched by vector."""

    def understand(self, message: str) -> Understanding:
        for phrase, (intent, confidence) in INTENTS.items():
            if phrase in message.lower():
                second = ("card_linking", 0.40) if phrase == "card thing" else ("atm_support", 0.01)
                return Understanding(message, intent, confidence, ((intent, confidence), second), (), "neutral", 0.9,
                                     torch.ones(4))
        return Understanding(message, "out_of_scope", 0.8, (("card_arrival", 0.1), ("change_pin", 0.05)),
                             (), "neutral", 0.9, torch.ones(4))


class FakeIndex:
    docs = [CARD, PIN]
    intents = {"card_arrival", "change_pin"}

    def __init__(self) -> None:
        self.queries: list[str | None] = []

    def search(self, query, k=3, intent=None):
        self.queries.append(intent)
        ranked = sorted(self.docs, key=lambda d: intent not in d.intents)
        return [Hit(d, 2.5 if intent in d.intents else 0.4, 0.5, intent in d.intents) for d in ranked[:k]]


def make(replies: list[str], style: str = "draft", store=None) -> tuple[Assistant, FakeIndex]:
    index = FakeIndex()
    llm = GenericFakeChatModel(messages=iter([AIMessage(r) for r in replies]))
    assistant = Assistant(FakeNLU(), Router(RouterConfig(clarify_margin=0.15)), index, Composer(llm, style=style),
                          store=store)
    return assistant, index


GOOD = "Standard delivery takes 3 to 5 working days, and you can follow it in Cards > Track delivery."
