"""A word n-gram companion for a sentence classifier, read beside the encoder's one pass.

The encoder's pooled features blur rare but telling words ("dividend", "bps", a metal's name);
TF-IDF word n-grams with a logistic regression keep them. A classifier with a lexical part
multiplies its head's probabilities by the lexical model's raised to a weight chosen on
validation (a product of experts), so the text is read once by the encoder and once as words:
no second encoder pass. On the news topics it lifts ``fin_topics`` accuracy by about half a point
(BENCHMARKS.md, "Topics with a word n-gram part").

Saved beside the checkpoint's head as ``lexical.json`` (format, labels, vocabulary, settings) and
``lexical.safetensors`` (idf, coefficients, intercepts): no pickle, so a model folder handed over
by someone else is only ever parsed as JSON and tensors. Fitting uses scikit-learn's
``TfidfVectorizer`` and ``LogisticRegression``; inference rebuilds the vectorizer from the saved
vocabulary and idf and applies the coefficients itself (one sparse product).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from finetune.models.files import (
    LEXICAL,
    LEXICAL_WEIGHTS,
    METRICS,
    CheckpointError,
    read_json,
    write_atomic,
    write_json,
)

FORMAT = "qagent-lexical/1"
_FLOOR = 1e-12  # probabilities are floored before the log: a zero would veto a class outright


@dataclass(frozen=True)
class LexicalSettings:
    """How the lexical part is fitted (:func:`finetune.training.lexical.fit_lexical`).

    Attributes:
        ngram_max: Longest word n-gram (1: words only; 2: words and word pairs).
        min_df: An n-gram must occur in at least this many training texts.
        c_grid: Inverse regularisation strengths of the logistic regression to try.
        weight_grid: Weights of the lexical log-probabilities to try (0 keeps the head alone).
    """

    ngram_max: int = 2
    min_df: int = 2
    c_grid: tuple[float, ...] = (3.0, 10.0, 30.0, 100.0)
    weight_grid: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(16))

    def __post_init__(self) -> None:
        if isinstance(self.ngram_max, bool) or not isinstance(self.ngram_max, int) or not 1 <= self.ngram_max <= 4:
            raise ValueError(f"ngram_max must be 1 to 4 words, got {self.ngram_max!r}")
        if isinstance(self.min_df, bool) or not isinstance(self.min_df, int) or self.min_df < 1:
            raise ValueError(f"min_df must be a positive number of texts, got {self.min_df!r}")
        object.__setattr__(self, "c_grid", tuple(float(c) for c in self.c_grid))
        object.__setattr__(self, "weight_grid", tuple(float(w) for w in self.weight_grid))
        if not self.c_grid or any(not np.isfinite(c) or c <= 0 for c in self.c_grid):
            raise ValueError(f"c_grid must hold positive numbers, got {self.c_grid}")
        if not self.weight_grid or any(not np.isfinite(w) or w < 0 for w in self.weight_grid):
            raise ValueError(f"weight_grid must hold numbers >= 0, got {self.weight_grid}")


class LexicalModel:
    """TF-IDF word n-grams and a multinomial logistic regression over ``labels``.

    Build one with :meth:`fit` or :meth:`load`; :meth:`fuse` joins its view to a head's probabilities.
    """

    def __init__(self, labels: Sequence[str], vocabulary: Sequence[str], idf: np.ndarray, coef: np.ndarray,
                 intercept: np.ndarray, *, ngram_max: int, c: float, weight: float = 0.0,
                 temperature: float = 1.0) -> None:
        n_labels, n_terms = len(labels), len(vocabulary)
        if idf.shape != (n_terms,) or coef.shape != (n_labels, n_terms) or intercept.shape != (n_labels,):
            raise ValueError(f"lexical weights do not fit {n_labels} labels and {n_terms} terms: idf {idf.shape}, "
                             f"coefficients {coef.shape}, intercepts {intercept.shape}")
        if not (np.isfinite(idf).all() and np.isfinite(coef).all() and np.isfinite(intercept).all()):
            raise ValueError("lexical weights hold NaN or infinite values")
        if not np.isfinite(weight) or weight < 0:
            raise ValueError(f"the lexical weight must be a number >= 0, got {weight}")
        if not np.isfinite(temperature) or temperature <= 0:
            raise ValueError(f"the temperature must be a number > 0, got {temperature}")
        self.labels = list(labels)
        self.vocabulary = list(vocabulary)
        self.idf = idf.astype(np.float32)
        self.coef = coef.astype(np.float32)
        self.intercept = intercept.astype(np.float32)
        self.ngram_max = int(ngram_max)
        self.c = float(c)
        self.weight = float(weight)
        self.temperature = float(temperature)
        self._vectorizer: Any = None

    @classmethod
    def fit(cls, texts: Sequence[str], labels: Sequence[str], label_order: Sequence[str], *, ngram_max: int = 2,
            min_df: int = 2, c: float = 10.0, seed: int = 0) -> LexicalModel:
        """Fit on ``texts`` and their ``labels`` (each one of ``label_order``, the classifier's columns)."""
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        order = {label: i for i, label in enumerate(label_order)}
        unknown = sorted(set(labels) - set(order))
        if unknown:
            raise ValueError(f"training labels {unknown[:5]} are not among the classifier's labels")
        vectorizer = TfidfVectorizer(ngram_range=(1, ngram_max), min_df=min_df, sublinear_tf=True, dtype=np.float32)
        try:
            matrix = vectorizer.fit_transform(list(texts))
        except ValueError as exc:  # sklearn: "empty vocabulary; perhaps the documents only contain stop words"
            raise ValueError(f"no word n-gram occurs in {min_df} or more training texts ({exc})") from None
        y = np.array([order[label] for label in labels])
        present = np.unique(y)
        if len(present) < 2:
            raise ValueError("a lexical part needs training texts of at least two labels")
        regression = LogisticRegression(C=c, max_iter=3000, random_state=seed).fit(matrix, y)
        # Classes absent from training keep a zero column and a very low intercept: never chosen by words.
        coef = np.zeros((len(order), matrix.shape[1]), dtype=np.float32)
        intercept = np.full(len(order), -30.0, dtype=np.float32)
        if len(present) == 2:  # sklearn keeps one row for two classes: the second class's logit
            coef[present[1]], intercept[present[1]] = regression.coef_[0], regression.intercept_[0]
            intercept[present[0]] = 0.0
        else:
            coef[present], intercept[present] = regression.coef_, regression.intercept_
        # Stored (and so scored) at half precision: the file halves, the probabilities move by < 1e-3.
        coef = coef.astype(np.float16).astype(np.float32)
        return cls(list(label_order), list(vectorizer.get_feature_names_out()), vectorizer.idf_, coef, intercept,
                   ngram_max=ngram_max, c=c)

    def with_weight(self, weight: float, temperature: float = 1.0) -> LexicalModel:
        """The same model joined to the head at ``weight``, the joined scores divided by ``temperature``."""
        return LexicalModel(self.labels, self.vocabulary, self.idf, self.coef, self.intercept,
                            ngram_max=self.ngram_max, c=self.c, weight=weight, temperature=temperature)

    def _vectorize(self, texts: Sequence[str]) -> Any:
        if self._vectorizer is None:
            from sklearn.feature_extraction.text import TfidfVectorizer

            vectorizer = TfidfVectorizer(ngram_range=(1, self.ngram_max), sublinear_tf=True, dtype=np.float32,
                                         vocabulary={term: i for i, term in enumerate(self.vocabulary)})
            vectorizer.idf_ = self.idf
            self._vectorizer = vectorizer
        return self._vectorizer.transform(list(texts))

    def log_probs(self, texts: Sequence[str]) -> np.ndarray:
        """Log-probabilities ``[N, C]`` of the lexical model alone (columns in ``labels`` order)."""
        if isinstance(texts, str):
            raise TypeError("log_probs takes a list of texts; wrap a single text in a list")
        if not len(texts):
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        logits = np.asarray(self._vectorize(texts) @ self.coef.T) + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))

    def fuse(self, probs: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """The head's ``probs`` ``[N, C]`` times this model's probabilities raised to the weight,
        renormalised (at the saved temperature)."""
        weight = self.weight
        if probs.shape != (len(texts), len(self.labels)):
            raise ValueError(f"probabilities {list(probs.shape)} do not match {len(texts)} texts "
                             f"and {len(self.labels)} labels")
        if weight == 0:
            return probs
        return fuse_log_probs(probs, self.log_probs(texts), weight, self.temperature)

    def save(self, directory: str | Path) -> None:
        """Write ``lexical.json`` and ``lexical.safetensors`` into a checkpoint directory."""
        from safetensors.numpy import save_file

        path = Path(directory)
        tensors = {"idf": self.idf, "coef": self.coef.astype(np.float16), "intercept": self.intercept}
        write_atomic(path / LEXICAL_WEIGHTS, lambda tmp: save_file(tensors, str(tmp)))
        write_json(path / LEXICAL, {"format": FORMAT, "labels": self.labels, "ngram_max": self.ngram_max,
                                    "c": self.c, "weight": self.weight, "temperature": self.temperature,
                                    "vocabulary": self.vocabulary})
        (path / LEXICAL_WEIGHTS).chmod(0o644)  # safetensors writes 0600; the folder's other files are 0644

    @classmethod
    def load(cls, directory: str | Path) -> LexicalModel | None:
        """The lexical part saved in ``directory``, or None when it has none."""
        path = Path(directory)
        if not (path / LEXICAL).is_file():
            return None
        fix = f"remove it (agent finetune lexical {path} --remove) and fit it again"
        data = read_json(path / LEXICAL)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise CheckpointError(f"{path / LEXICAL} is not a lexical part ({FORMAT}); {fix}")
        if not (path / LEXICAL_WEIGHTS).is_file():
            raise CheckpointError(f"{path / LEXICAL_WEIGHTS} is missing beside {LEXICAL}; {fix}")
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        vocabulary, ngram_max = data.get("vocabulary"), data.get("ngram_max")
        if not (isinstance(vocabulary, list) and all(isinstance(t, str) for t in vocabulary)
                and len(set(vocabulary)) == len(vocabulary)):
            raise CheckpointError(f"{path / LEXICAL}: the vocabulary must be a list of distinct strings; {fix}")
        if isinstance(ngram_max, bool) or not isinstance(ngram_max, int) or not 1 <= ngram_max <= 4:
            raise CheckpointError(f"{path / LEXICAL}: ngram_max must be 1 to 4, got {ngram_max!r}; {fix}")
        try:
            tensors = load_file(str(path / LEXICAL_WEIGHTS))
            return cls(data["labels"], data["vocabulary"], tensors["idf"], tensors["coef"].astype(np.float32),
                       tensors["intercept"], ngram_max=int(data["ngram_max"]), c=float(data["c"]),
                       weight=float(data["weight"]), temperature=float(data.get("temperature", 1.0)))
        except (SafetensorError, KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{path / LEXICAL_WEIGHTS} or {LEXICAL} is unreadable ({exc}); {fix}") from None


def joined_scores(probs: np.ndarray, log_q: np.ndarray, weight: float) -> np.ndarray:
    """``log probs + weight * log_q``: the unnormalised log-probabilities of the product of experts."""
    return np.log(np.clip(probs, _FLOOR, None)) + weight * log_q


def fuse_log_probs(probs: np.ndarray, log_q: np.ndarray, weight: float, temperature: float = 1.0) -> np.ndarray:
    """``(probs * exp(log_q) ** weight) ** (1 / temperature)``, renormalised per row. The product
    of two confident models is over-confident; the temperature, fitted on validation, tempers it
    without changing which label wins."""
    scores = joined_scores(probs, log_q, weight) / temperature
    scores -= scores.max(axis=1, keepdims=True)
    fused = np.exp(scores)
    return (fused / fused.sum(axis=1, keepdims=True)).astype(np.float32)


def remove_lexical(directory: str | Path) -> bool:
    """Delete a checkpoint's lexical part and its entry in ``metrics.json``, and drop them from
    ``checksums.json``; True when there was a part. The other files' checksums are left alone."""
    from finetune.models.integrity import update_checksums

    path = Path(directory)
    found = False
    for name in (LEXICAL, LEXICAL_WEIGHTS):
        if (path / name).is_file():
            (path / name).unlink()
            found = True
    changed = [LEXICAL, LEXICAL_WEIGHTS]
    metrics = path / METRICS
    if metrics.is_file():
        try:
            data = json.loads(metrics.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            data = None  # an unreadable metrics file is not this function's to mend
        if isinstance(data, dict) and "lexical" in data:
            del data["lexical"]
            write_json(metrics, data)
            changed.append(METRICS)
    if found or len(changed) > 2:
        update_checksums(path, changed)
    return found
