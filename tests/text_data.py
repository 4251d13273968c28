"""A tiny three-intent data set (plus out-of-scope queries) for fast classifier tests."""

from __future__ import annotations

from finetune.data.loaders import OUT_OF_SCOPE, TextDataset, TextExample
from finetune.data.oos import OOSExamples

TEXTS = {
    "card_lost": [
        "I lost my card", "my card is missing", "someone stole my debit card", "I can't find my bank card",
        "my wallet with my card was stolen", "card lost yesterday", "help, my card is gone",
        "I think I lost my credit card", "where is my card, I lost it", "report my card as stolen",
    ],
    "balance": [
        "what is my balance", "how much money do I have", "show my account balance", "check my balance",
        "how much is in my account", "balance please", "tell me my current balance",
        "what's left in my account", "account balance now", "how much cash is on my account",
    ],
    "transfer": [
        "send money to my friend", "transfer 50 dollars to john", "make a bank transfer", "wire money abroad",
        "move money to savings", "pay my rent by transfer", "transfer funds to another account",
        "send cash to my mom", "how do I transfer money", "make a payment to a friend",
    ],
}
OOS = ["what's the weather tomorrow", "tell me a joke", "how do I bake bread", "play some music",
       "who won the football game", "translate hello to french", "book a flight to paris", "set an alarm"]


def tiny_intents() -> TextDataset:
    train, validation, test = [], [], []
    for label, texts in TEXTS.items():
        rows = [TextExample(text, label) for text in texts]
        train += rows[:6]
        validation += rows[6:8]
        test += rows[8:]
    return TextDataset("tiny", sorted(TEXTS), train, validation, test)


def tiny_oos() -> OOSExamples:
    rows = [TextExample(text, OUT_OF_SCOPE) for text in OOS]
    return OOSExamples(train=rows[:4], validation=rows[4:6], test=rows[6:])


def write_csv(path, *, labels: dict[str, list[str]] = TEXTS) -> None:
    import csv

    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for label, texts in labels.items():
            for text in texts:
                writer.writerow([text, label])
