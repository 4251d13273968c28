"""How closely one entity tagger follows another on finance headlines, which have no gold entities.

Run: ``python -m eval.tagger_agreement MODEL [--reference agent/assets/models/ner] [--data-dir ../shared/data] [--json]``

The news monitor tags headlines like the finance tweets, but no data set labels their entities.
A tagger trained jointly with sentiment (:mod:`finetune.training.joint`) must keep tagging them as
the tagger trained alone does. This measures that on the tweets' test split (``valid.csv``, links
stripped as the monitor benchmark strips them), which no model trains on, not even through a
teacher's pseudo-labels:

- entity-level precision, recall and F1 of MODEL against REFERENCE (same type and same span);
- per model, how many headlines get a company name at the monitor's confidence (0.5), the
  entities the monitor actually counts.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent.monitor.scoring import ScoringConfig
from eval.monitor_bench import as_headline
from finetune.models.tagger import Entity

MONITOR_MIN_SCORE = ScoringConfig().min_entity_score  # the confidence at which the monitor counts a name


def agreement(found: Sequence[Sequence[Entity]], reference: Sequence[Sequence[Entity]]) -> dict[str, float]:
    """Entity-level precision/recall/F1 of ``found`` against ``reference`` (type and span must match)."""
    ours = {(i, e.type, e.start, e.end) for i, es in enumerate(found) for e in es}
    theirs = {(i, e.type, e.start, e.end) for i, es in enumerate(reference) for e in es}
    both = len(ours & theirs)
    precision = both / len(ours) if ours else 0.0
    recall = both / len(theirs) if theirs else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "entities": len(ours), "reference_entities": len(theirs)}


def headlines_with_company(found: Sequence[Sequence[Entity]], min_score: float = MONITOR_MIN_SCORE) -> int:
    """How many texts have a ``company_name`` entity the monitor would count."""
    return sum(any(e.type == "company_name" and e.score >= min_score for e in es) for es in found)


def differing_companies(
    texts: Sequence[str], found: Sequence[Sequence[Entity]], reference: Sequence[Sequence[Entity]],
    min_score: float = MONITOR_MIN_SCORE,
) -> list[dict[str, Any]]:
    """The texts whose counted company names differ between the two taggers, with both lists."""
    def names(entities: Sequence[Entity]) -> list[str]:
        return sorted(e.text for e in entities if e.type == "company_name" and e.score >= min_score)

    return [{"text": t, "model": names(a), "reference": names(b)}
            for t, a, b in zip(texts, found, reference) if names(a) != names(b)]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="Entity tagger checkpoint to measure.")
    parser.add_argument("--reference", type=Path, default=None, help="Tagger to compare with (default: the shipped one).")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--json", action="store_true", help="Print the JSON report (no progress bars).")
    parser.add_argument("--examples", type=int, default=0, help="Also list this many headlines whose counted companies differ.")
    args = parser.parse_args(argv)

    from agent.shipped import NER_MODEL
    from finetune.models.checkpoint import CheckpointError
    from finetune.data.loaders import load_sentiment
    from finetune.models.loading import load_tagger

    try:
        taggers = {"model": load_tagger(args.model), "reference": load_tagger(args.reference or NER_MODEL)}
        headlines = [as_headline(e.text) for e in load_sentiment("fin_tweets", data_dir=args.data_dir).test]
    except (OSError, ValueError, CheckpointError) as exc:  # a missing data folder or checkpoint: say which, no traceback
        parser.exit(1, f"error: {exc}\n")
    found = {name: tagger.predict(headlines, progress=not args.json) for name, tagger in taggers.items()}
    report = {
        "data": f"fin_tweets test split ({len(headlines)} headlines, links stripped)",
        "model": str(args.model), "reference": str(taggers["reference"].checkpoint.path),
        "agreement": agreement(found["model"], found["reference"]),
        "headlines_with_company": {name: headlines_with_company(f) for name, f in found.items()},
    }
    if args.examples:
        report["examples"] = differing_companies(headlines, found["model"], found["reference"])[: args.examples]
    if args.json:
        print(json.dumps(report, indent=2))
        return report
    a, companies = report["agreement"], report["headlines_with_company"]
    print(f"{args.model} against {report['reference']} on {report['data']}:")
    print(f"  entities {a['entities']} vs {a['reference_entities']}: precision {a['precision']:.3f}, "
          f"recall {a['recall']:.3f}, F1 {a['f1']:.3f}")
    print(f"  headlines with a company name (score >= {MONITOR_MIN_SCORE}): {companies['model']} vs {companies['reference']}")
    for example in report.get("examples", []):
        print(f"  {example['text'][:100]!r}: model {example['model']}, reference {example['reference']}")
    return report


if __name__ == "__main__":
    main()
