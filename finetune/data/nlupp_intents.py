"""NLU++ intents as multi-label examples, fold by fold.

NLU++ gives each banking query a *set* of intent modules (``['how_long', 'pin', 'arrival']``), so
its intent task is multi-label: a model scores every intent independently. The slot side of the
same files is read by :func:`finetune.data.loaders.load_entities`; this module reads the intent side.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from finetune.data.loaders import NLUPP_FOLDS, DataError, resolve_data_dir


@dataclass(frozen=True)
class MultiLabelExample:
    text: str
    intents: tuple[str, ...]


@dataclass(frozen=True)
class NluppIntents:
    """Every fold's examples and the ontology's intent names (the label order of a multi-hot row)."""

    labels: tuple[str, ...]
    folds: tuple[tuple[MultiLabelExample, ...], ...]

    def examples(self, fold_ids: list[int]) -> list[MultiLabelExample]:
        return [example for k in fold_ids for example in self.folds[k]]


def load_nlupp_intents(data_dir: str | Path | None = None) -> NluppIntents:
    """Read the 20 banking folds of NLU++ with their intent sets.

    Raises:
        DataError: A file is missing or malformed, or an example names an intent the ontology lacks.
    """
    import json

    root = resolve_data_dir(data_dir) / "nlupp"
    try:
        ontology = json.loads((root / "ontology.json").read_text(encoding="utf-8"))
        labels = tuple(ontology["intents"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{root / 'ontology.json'}: cannot read the intent list ({exc})") from None
    known = set(labels)
    folds = []
    for k in range(NLUPP_FOLDS):
        path = root / "banking" / f"fold{k}.json"
        try:
            items = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: cannot read the fold ({exc})") from None
        fold = []
        for i, item in enumerate(items):
            text = item.get("text") if isinstance(item, dict) else None
            intents = tuple(item.get("intents") or ()) if isinstance(item, dict) else ()
            if not isinstance(text, str) or not text.strip():
                raise DataError(f"{path} example {i}: no text")
            unknown = set(intents) - known
            if unknown:
                raise DataError(f"{path} example {i}: intents {sorted(unknown)} are not in the ontology")
            fold.append(MultiLabelExample(text, intents))
        folds.append(tuple(fold))
    return NluppIntents(labels, tuple(folds))
