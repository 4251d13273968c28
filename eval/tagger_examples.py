"""What entity taggers find in a fixed set of chat messages and headlines, side by side.

Run: ``python -m eval.tagger_examples MODEL [MODEL …] [--text "…" …] [--json]``

The test folds score a tagger on NLU++'s own sentences. These probes are the product's: the UI's
example prompt worded six ways (does the tagger still find "Anna" when the sentence is turned
around?), and headlines whose companies a past tagger missed or mistook for people. Comparing two
checkpoints on them shows, sentence by sentence, what a new model gains and loses where the
benchmarks cannot look. ``default`` is the shipped tagger (``agent/assets/models/ner``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

CHAT = (
    "I sent 50 pounds to Anna yesterday but she hasn't received it",
    "I transferred 50 pounds to Anna yesterday but she hasn't received it",
    "Yesterday I sent 50 pounds to Anna and she hasn't received it",
    "Anna hasn't received the 50 pounds I sent her yesterday",
    "I sent Anna 50 pounds yesterday and she still hasn't got it",
    "Sent 50 pounds to Anna yesterday, she hasn't received it",
)
NEWS = (
    "Shares of Barclays fell 3% in London.",
    "Northwind Bank cut to underperform at Jefferies",
    "Morgan Stanley upgrades Apple to overweight",
)


def found(taggers: dict[str, Any], texts: Sequence[str]) -> dict[str, list[list[tuple[str, str]]]]:
    """(type, text) of each entity each tagger finds in each text, by tagger name."""
    return {name: [[(e.type, e.text) for e in entities] for entities in tagger.predict(list(texts))]
            for name, tagger in taggers.items()}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m eval.tagger_examples", description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="Entity tagger checkpoints ('default': the shipped one).")
    parser.add_argument("--text", action="append", default=None, help="Sentences to tag instead of the built-in ones.")
    parser.add_argument("--json", action="store_true", help="Print JSON instead of a table.")
    args = parser.parse_args(argv)

    from finetune.models.encoder import Encoder
    from agent.shipped import model_path
    from finetune.models.loading import load_tagger

    texts = args.text or [*CHAT, *NEWS]
    encoder = Encoder.load()
    try:
        taggers = {m: load_tagger(model_path(m, "ner"), encoder=encoder) for m in args.models}
    except Exception as exc:  # a wrong path: one line, no traceback
        parser.exit(1, f"error: {exc}\n")
    result = {"texts": texts, "found": found(taggers, texts)}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for i, text in enumerate(texts):
            print(text)
            for name in taggers:
                entities = ", ".join(f"{kind}: {span!r}" for kind, span in result["found"][name][i]) or "nothing"
                print(f"  {name}: {entities}")
    return result


if __name__ == "__main__":
    main()
