"""NLU++ fold selections: fold lists as users write them, and the data set's two standard setups.

NLU++ comes in 20 folds. Its paper's setups are ``large`` (train on 19 folds, test on the one left)
and ``20-fold`` (train on one fold, test on the other 19); qagent's own default trains on folds
0-17 and keeps 18-19 for the test.
"""

from __future__ import annotations

from finetune.data.loaders import NLUPP_FOLDS
from finetune.errors import SettingError

SETUPS = ("large", "20-fold")


def parse_folds(text: str, setting: str = "folds") -> list[int]:
    """NLU++ fold ids from ``"0-17"``, ``"18,19"`` or ``"3"`` (ranges inclusive), sorted.

    Raises:
        SettingError: ``text`` is not of that form (``setting`` names the option it came from).
    """
    folds: set[int] = set()
    for part in (p.strip() for p in text.split(",")):
        low, dash, high = part.partition("-")
        try:
            folds.update(range(int(low), int(high) + 1) if dash else [int(low)])
        except ValueError:
            raise SettingError(setting, f"folds must look like 0-17 or 18,19; got {text!r}") from None
    return sorted(folds)


def setup_folds(setup: str, fold: int, n_folds: int = NLUPP_FOLDS) -> tuple[list[int], list[int]]:
    """Train and test folds of an NLU++ setup: ``large`` tests on ``fold`` and trains on the other
    19, ``20-fold`` trains on ``fold`` alone and tests on the other 19."""
    if setup not in SETUPS:
        raise SettingError("setup", f"setup must be one of {', '.join(SETUPS)}; got {setup!r}")
    if not 0 <= fold < n_folds:
        raise SettingError("fold", f"fold must be 0-{n_folds - 1}, got {fold}")
    rest = [i for i in range(n_folds) if i != fold]
    return (rest, [fold]) if setup == "large" else ([fold], rest)


def other_folds(folds: list[int], n_folds: int = NLUPP_FOLDS) -> list[int]:
    """Every fold not in ``folds`` (the held-out side of a training selection)."""
    return [i for i in range(n_folds) if i not in folds]


def nlupp_folds(data: str, train_folds: str, test_folds: str, setup: str | None = None,
                fold: int = 0) -> dict[str, list[int]]:
    """``load_entities``' fold arguments for ``data``: the fold options (or a setup) for NLU++,
    nothing for other data (where a setup is an error)."""
    if data.lower() != "nlupp":
        if setup:
            raise SettingError("setup", "--setup only applies to --data nlupp")
        return {}
    if setup:
        train_ids, test_ids = setup_folds(setup, fold)
    else:
        train_ids, test_ids = parse_folds(train_folds, "train_folds"), parse_folds(test_folds, "test_folds")
    return {"train_folds": train_ids, "test_folds": test_ids}
