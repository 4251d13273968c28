"""Train sentence classifiers (sentiment, topics, …) and the entity tagger together, on one shared LoRA adapter.

The news monitor asks every model about every headline: its sentiment, its topic, its entities.
Trained apart, each model has its own adapter and so its own encoder pass; trained together, they
share one adapter, and :func:`finetune.models.passes.analyze` runs the encoder once for all of
them. Any number of sentence tasks (:class:`SentenceTask`, each with its own data, head and
checkpoint) join the tagger. Fine-tuning the encoder on
sentiment is also what lifts it past frozen features (0.81 on the finance tweets).
Without help the tweets give the shared adapter no tagging signal, and it forgets how to tag news
text: measured (BENCHMARKS.md), such a tagger finds company names in far fewer news headlines than
a tagger trained alone. So a *teacher* tagger (the one trained alone) can tag the tweets first;
its entities become tagging targets for the sentiment examples (pseudo-labels, weighted by
``JointSpec.pseudo_tagging_weight``), and the shared adapter keeps more of the teacher's news
tagging. With ``warm_start`` the shared adapter and the tagger head also start as the teacher's.
The news monitor's pair (`agent/assets/models/news-*`) is trained that way; BENCHMARKS.md has the numbers of each variant.
A sentence task can have a teacher too (``distil_from``): a classifier that had an adapter to
itself (a topic model trained alone reaches more than the shared adapter does), whose
probabilities on that task's training texts become part of its targets. A run that goes on from
another (``init_from``) may widen the adapter to a larger rank first (``JointSpec.widen_to``).

One :class:`JointModel` reads every kind of example in the same batches. Its logits pack the tasks
into one tensor ``[B, T + S1 + S2 + …, 1 + n_words]`` so the ordinary
:class:`~finetune.training.trainer.Trainer` (checkpoints, resume, early stopping) drives it:
position 0 holds each sentence task's logits in its own block of class slots after the first
``T``, positions ``1…`` hold each word's tag logits in the first ``T``. An example belongs to one
sentence task (its label at position 0 falls in that task's block) or is a tagging example.
:func:`joint_loss` reads each task from its own slots, so no task sees another's classes.

The result is ordinary checkpoint directories (one per sentence task, and an ``ner`` one), each
with a copy of the same adapter; any of them loads and runs alone like any other model.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from finetune.models.classifier import TASKS, TextClassifier
from finetune.models.lora import LoraSettings, widen_adapter
from finetune.data.loaders import TaggedDataset, TextDataset, TextExample
from finetune.models.encoder import Encoder
from finetune.models.heads import Head, HeadConfig, count_parameters
from finetune.models.tag_transitions import constrained_decode
from finetune.models.tagger import IGNORE, EntityTagger, bio_tags, gather_words
from finetune.models.tagger import TASK as NER_TASK
from finetune.data.tagging import entity_f1, recorded_data_warnings
from finetune.training.tagger import bio_rows, fit_decoding, padded_tag_rows
from finetune.data.tagging import Span, Word, bio_to_spans, spans_to_bio
from finetune.data.soft_labels import soft_label_names
from finetune.training.distill import file_probabilities, teacher_probabilities
from finetune.training.recipe import add_adapter, build_head, fit, mode_settings, save_model
from finetune.training.trainer import Checkpointing, TrainerCallback, TrainingArguments, TrainResult

Item = tuple[str, list[Word] | None]  # (text, words) for a tagging example, (text, None) for a sentence one
Block = tuple[str, int, int]  # a sentence task's name and its class slots [start, end) in the packed logits


@dataclass(frozen=True)
class SentenceTask:
    """One sentence classifier trained on the shared adapter.

    Args:
        task: The checkpoint's task (``sentiment``, ``topics``, ``intents``).
        data: Its data set (train and validation splits are read; test never).
        out: Its checkpoint directory.
        head: Head shape (``in_features``/``n_classes`` are filled in).
        smoothing: Label smoothing of its loss.
        weight: Weight of its loss beside the other tasks'.
    """

    task: str
    data: TextDataset
    out: Path
    head: HeadConfig = field(default_factory=HeadConfig)
    smoothing: float = 0.1
    weight: float = 1.0

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"a sentence task must be one of {', '.join(TASKS)}; got {self.task!r}")
        if not 0.0 <= self.smoothing < 1.0:
            raise ValueError(f"{self.task}: smoothing must be in [0, 1), got {self.smoothing}")
        if self.weight <= 0:
            raise ValueError(f"{self.task}: weight must be > 0, got {self.weight}")
        object.__setattr__(self, "out", Path(self.out))


@dataclass(frozen=True)
class JointSpec:
    """What to train beyond the sentence tasks and the trainer's arguments.

    Args:
        tagger_head: Word head shape (``in_features``/``n_classes`` are filled in).
        lora: The shared adapter's shape.
        tagging_repeat: How many times each tagging example appears per epoch. The tagging set
            is a fifth of the tweets' size; repeating it keeps the tagger's share of the steps.
        tagging_weight: Weight of the tagging loss beside the sentence losses.
        pseudo_tagging_weight: Weight of the tagging loss on the sentence texts' pseudo-labels
            (used only when ``train_joint`` gets a teacher tagger).
        distil_weight: Share of a sentence task's loss that reads its teacher classifier's
            probabilities instead of the gold label (used only for tasks given a teacher).
        distil_temperature: Temperature the teacher's logits are softened by before they become
            targets; above 1 the runner-up classes keep more of the probability.
        widen_to: With ``init_from``, the rank the started adapter is widened to before training
            (:func:`~finetune.models.lora.widen_adapter`): it begins computing what it did, with
            room for more. ``None`` keeps its rank.
    """

    tagger_head: HeadConfig = field(default_factory=lambda: HeadConfig(kind="linear"))
    lora: LoraSettings = field(
        default_factory=lambda: LoraSettings(r=16, alpha=32, target_modules=("query", "key", "value", "dense"))
    )
    tagging_repeat: int = 2
    tagging_weight: float = 1.0
    pseudo_tagging_weight: float = 0.5
    distil_weight: float = 0.5
    distil_temperature: float = 2.0
    widen_to: int | None = None

    def __post_init__(self) -> None:
        if self.widen_to is not None and (isinstance(self.widen_to, bool) or not isinstance(self.widen_to, int)
                                          or self.widen_to < 2):
            raise ValueError(f"widen_to must be an integer rank >= 2, got {self.widen_to!r}")
        if not isinstance(self.tagging_repeat, int) or self.tagging_repeat < 1:
            raise ValueError(f"tagging_repeat must be a positive integer, got {self.tagging_repeat!r}")
        if self.tagging_weight <= 0:
            raise ValueError(f"tagging_weight must be > 0, got {self.tagging_weight}")
        if self.pseudo_tagging_weight < 0:
            raise ValueError(f"pseudo_tagging_weight must be >= 0, got {self.pseudo_tagging_weight}")
        if not 0.0 < self.distil_weight <= 1.0:
            raise ValueError(f"distil_weight must be in (0, 1], got {self.distil_weight}")
        if self.distil_temperature <= 0:
            raise ValueError(f"distil_temperature must be > 0, got {self.distil_temperature}")


@dataclass
class TrainedJoint:
    """What ``train_joint`` produced: every checkpoint directory, the loaded models, the run."""

    paths: dict[str, Path]  # by task, ``ner`` included
    classifiers: dict[str, TextClassifier]  # by sentence task
    tagger: EntityTagger
    result: TrainResult
    metrics: dict[str, Any]

    @property
    def ner_path(self) -> Path:
        return self.paths[NER_TASK]


class JointModel(nn.Module):
    """Encoder (with the shared adapter) + one head per sentence task + tagger head, packed logits (see module doc)."""

    def __init__(self, encoder: Encoder, sentence_heads: Sequence[Head], tagger_head: Head, n_words: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.sentence_heads = nn.ModuleList(sentence_heads)
        self.tagger_head = tagger_head
        self.n_words = n_words
        self.n_tags = tagger_head.config.n_classes
        self.n_sentence = sum(head.config.n_classes for head in sentence_heads)

    def forward(self, items: Sequence[Item]) -> torch.Tensor:
        texts = [text for text, _ in items]
        batch = self.encoder.tokenize(texts, words=[words or [] for _, words in items])
        sentence, hidden = self.encoder(batch)
        words = self.tagger_head(gather_words(hidden, batch["word_index"], self.n_words))  # [B, W, T]
        # Unused slots hold zeros; the loss and the scorer never read them.
        out = sentence.new_zeros(len(items), self.n_tags + self.n_sentence, 1 + self.n_words)
        out[:, self.n_tags :, 0] = torch.cat([head(sentence) for head in self.sentence_heads], dim=-1)
        out[:, : self.n_tags, 1:] = words.transpose(1, 2)
        return out


def task_blocks(n_tags: int, tasks: Sequence[tuple[str, int]]) -> list[Block]:
    """Each sentence task's class slots in the packed logits, from ``(name, n_classes)`` in order."""
    blocks, start = [], n_tags
    for name, n_classes in tasks:
        blocks.append((name, start, start + n_classes))
        start += n_classes
    return blocks


def _blocks_or_one(n_tags: int, n_slots: int, blocks: Sequence[Block] | None) -> Sequence[Block]:
    # One sentence task (sentiment) taking every slot after the tags, when no blocks are given.
    return blocks if blocks is not None else [("sentiment", n_tags, n_slots)]


def joint_loss(
    n_tags: int, *, tagging_weight: float = 1.0, smoothing: float = 0.0, pseudo_weight: float = 0.0,
    blocks: Sequence[Block] | None = None, smoothings: Sequence[float] | None = None,
    weights: Sequence[float] | None = None, distil_weight: float = 0.0,
) -> Callable[..., torch.Tensor]:
    """Loss over packed logits: each sentence task's cross-entropy at position 0 (over its own
    block, weighted), plus weighted tagging cross-entropy on the tagging examples, plus
    ``pseudo_weight`` times the tagging cross-entropy on sentence examples that carry word tags (a
    teacher's pseudo-labels).

    Labels are class ids (``[B, 1 + n_words]``, long), or, when some sentence examples carry a
    teacher classifier's probabilities, float rows with one more column per sentence class slot
    (:func:`soft_columns`): a row whose slots of its own task sum to more than 0 then takes
    ``distil_weight`` of its sentence loss as cross-entropy against those probabilities and the
    rest against its gold label.

    Args:
        blocks: The sentence tasks' class slots (:func:`task_blocks`); default one task after the tags.
        smoothings, weights: Per block (default ``smoothing`` and 1 for each).

    Each term is averaged over its own labelled positions; a batch without one of them skips it.
    """

    def loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        total = logits.new_zeros(())
        parts = _blocks_or_one(n_tags, logits.shape[1], blocks)
        soft = None
        if labels.is_floating_point():
            width = logits.shape[2]
            soft, labels = labels[:, width:], labels[:, :width].long()
        sentence = labels[:, 0]
        rows = sentence != IGNORE
        for k, (_, start, end) in enumerate(parts):
            mine = rows & (sentence >= start) & (sentence < end)
            if mine.any():
                eps = smoothings[k] if smoothings is not None else smoothing
                weight = weights[k] if weights is not None else 1.0
                scores = logits[mine, start:end, 0]
                each = F.cross_entropy(scores, sentence[mine] - start, label_smoothing=eps, reduction="none")
                if soft is not None:
                    target = soft[mine, start - n_tags : end - n_tags]
                    taught = -(target * F.log_softmax(scores, dim=-1)).sum(-1)
                    each = torch.where(target.sum(-1) > 0, (1 - distil_weight) * each + distil_weight * taught, each)
                total = total + weight * each.mean()
        tags = labels[:, 1:]
        for weight, part in ((tagging_weight, ~rows), (pseudo_weight, rows)):
            if weight and (tags[part] != IGNORE).any():
                total = total + weight * F.cross_entropy(logits[part, :n_tags, 1:], tags[part], ignore_index=IGNORE)
        return total

    return loss


def _warm_start(encoder: Encoder, teacher: EntityTagger | None, tags: list[str], backend: str) -> tuple[LoraSettings, Head]:
    """Give ``encoder`` a trainable copy of the teacher's adapter; return its LoRA shape and a copy of its head."""
    if teacher is None or teacher.checkpoint.adapter_dir is None:
        raise ValueError("warm_start needs a teacher tagger that has a LoRA adapter")
    head = _warm_start_head(teacher, tags, backend, encoder)
    encoder.load_adapter(teacher.checkpoint.adapter_dir, trainable=True)
    return _lora_of(teacher.checkpoint.settings), head


def _lora_of(settings: dict[str, Any]) -> LoraSettings:
    """The LoRA shape a checkpoint's settings record."""
    lora = settings.get("lora", {})
    return LoraSettings(**{k: v for k, v in lora.items() if k in ("r", "alpha", "dropout", "target_modules")})


def _warm_start_head(teacher: EntityTagger | None, tags: list[str], backend: str, encoder: Encoder) -> Head:
    """A trainable copy of the teacher's tagger head, on the run's device."""
    if teacher is None:
        raise ValueError("warm_start needs a teacher tagger")
    if list(teacher.tags) != list(tags):
        raise ValueError(f"the tagger head can start only from a tagger with the entity data's tags; "
                         f"{teacher.checkpoint.path} has {len(teacher.tags)} tags, the data {len(tags)}")
    head = Head(teacher.head.config, backend=backend)
    head.load_state_dict(teacher.head.state_dict())
    return head.to(encoder.device)  # the run's device (see build_head)


def _init_from(encoder: Encoder, models: Sequence[TextClassifier | EntityTagger], tasks: Sequence[SentenceTask],
               labels: dict[str, list[str]], heads: list[Head], tags: list[str], backend: str,
               widen_to: int | None = None, seed: int = 0) -> tuple[LoraSettings, Head | None]:
    """Give ``encoder`` a trainable copy of the models' adapter and start each model's head (a sentence
    task's, same labels, or the tagger's, same tags) from its own; return the adapter's LoRA shape
    and the tagger head when one of the models is a tagger.

    Several models must share one adapter (the checkpoints of one joint run do), so a run can go on
    from where a joint run ended with a fresh schedule."""
    names = [t.task for t in tasks]
    seen: set[str] = set()
    tagger_head = None
    for model in models:
        path, task = model.checkpoint.path, model.checkpoint.task
        if model.checkpoint.adapter_dir is None:
            raise ValueError(f"--init-from needs models with a LoRA adapter; {path} has none")
        if task in seen:
            raise ValueError(f"--init-from gives two {task} models; give each task at most once")
        seen.add(task)
        if isinstance(model, EntityTagger):
            tagger_head = _warm_start_head(model, tags, backend, encoder)
            continue
        if task not in names:
            raise ValueError(f"--init-from {path} is a {task} model; the run trains {', '.join(names)}")
        k = names.index(task)
        if sorted(model.labels) != labels[task]:
            raise ValueError(f"--init-from {path} has other {task} labels than the data "
                             f"({len(model.labels)} against {len(labels[task])})")
        if model.head.config != heads[k].config:
            raise ValueError(f"--init-from {path} has another head shape than --{task}-head and the circuit options ask for")
        heads[k].load_state_dict(model.head.state_dict())
        # The saved head orders its classes as the model's labels; the run orders them sorted.
        heads[k].reorder_classes([model.labels.index(name) for name in labels[task]])
    first = models[0]
    for model in models[1:]:
        if not model.shares_encoder_with(first):
            raise ValueError(f"--init-from models must share one adapter (the checkpoints of one joint run); "
                             f"{model.checkpoint.path} and {first.checkpoint.path} have different ones")
    if widen_to is None:
        encoder.load_adapter(first.checkpoint.adapter_dir, trainable=True)
        return _lora_of(first.checkpoint.settings), tagger_head
    with tempfile.TemporaryDirectory(prefix="qagent-widened-") as tmp:
        lora = widen_adapter(first.checkpoint.adapter_dir, tmp, widen_to, seed=seed)
        encoder.load_adapter(tmp, trainable=True)  # the weights are in memory once loaded
    return lora, tagger_head


def pseudo_tag_rows(teacher: EntityTagger, texts: Sequence[str], tags: Sequence[str], *, progress: bool = False) -> list[Any]:
    """``(text, words, word_tags)`` rows of ``texts`` tagged by ``teacher`` (its entity types must be in ``tags``)."""
    unknown = sorted(set(bio_tags(teacher.entity_types)) - set(tags))
    if unknown:
        raise ValueError(f"the teacher tagger has tags {unknown} that the entity data does not; "
                         "train the teacher on the same entity data")
    found = teacher.predict(list(texts), progress=progress)
    return [(text, *spans_to_bio(text, [Span(e.start, e.end, e.type) for e in entities]))
            for text, entities in zip(texts, found)]


def soft_columns(n_rows: int, blocks: Sequence[Block], n_tags: int, taught: dict[str, torch.Tensor],
                 sizes: Sequence[int]) -> torch.Tensor:
    """The extra label columns of :func:`joint_loss`: ``[n_rows, sentence slots]``, zero but for
    each taught task's rows, which hold its teacher's probabilities in that task's slots.

    Args:
        taught: By task, its teacher's probabilities ``[N, C]`` on its training examples.
        sizes: Each block's number of training examples; the rows hold them block after block.
    """
    out = torch.zeros(n_rows, blocks[-1][2] - n_tags)
    first = 0
    for (name, start, end), size in zip(blocks, sizes):
        if name in taught:
            out[first : first + size, start - n_tags : end - n_tags] = taught[name]
        first += size
    return out


def joint_scores(labels: np.ndarray, logits: np.ndarray, tags: Sequence[str],
                 blocks: Sequence[Block] | None = None) -> dict[str, float]:
    """Each sentence task's accuracy and macro-F1 (``<task>_accuracy``, ``<task>_macro_f1``), and
    entity micro-F1 (tagging examples only), from packed labels and logits.

    ``blocks`` are the tasks' class slots (:func:`task_blocks`); default one ``sentiment`` task."""
    from sklearn.metrics import f1_score

    n_tags = len(tags)
    rows = labels[:, 0] != IGNORE
    scores: dict[str, float] = {}
    for name, start, end in _blocks_or_one(n_tags, logits.shape[1], blocks):
        mine = rows & (labels[:, 0] >= start) & (labels[:, 0] < end)
        gold_class = labels[mine, 0] - start
        predicted_class = logits[mine, start:end, 0].argmax(-1)
        scores[f"{name}_accuracy"] = float((gold_class == predicted_class).mean()) if mine.any() else 0.0
        scores[f"{name}_macro_f1"] = (float(f1_score(gold_class, predicted_class, average="macro", zero_division=0))
                                      if mine.any() else 0.0)
    gold, predicted = [], []
    for row, word_scores in zip(labels[~rows, 1:], logits[~rows, :n_tags, 1:]):
        keep = row != IGNORE
        log_probs = word_scores.T[keep]
        log_probs = log_probs - np.logaddexp.reduce(log_probs, axis=-1, keepdims=True)
        gold.append([tags[i] for i in row[keep]])
        predicted.append([tags[i] for i in constrained_decode(log_probs, tags)])
    scores["entity_f1"] = entity_f1(gold, predicted) if gold else 0.0
    return scores


def train_joint(
    tasks: Sequence[SentenceTask],
    entity_data: TaggedDataset,
    spec: JointSpec,
    args: TrainingArguments,
    encoder: Encoder,
    ner_out: str | Path,
    *,
    backend: str = "exact",
    command: str | None = None,
    skipped_spans: int = 0,
    teacher: EntityTagger | None = None,
    warm_start: bool = False,
    init_from: Sequence[TextClassifier | EntityTagger] = (),
    distil_from: Sequence[TextClassifier | Path] = (),
    callbacks: Sequence[TrainerCallback | Callable[[dict[str, float]], None]] = (),
    checkpointing: Checkpointing | None = None,
) -> TrainedJoint:
    """Train every sentence task's head, the tagger head and one shared adapter; write one
    checkpoint per sentence task and an ``ner`` one.

    Early stopping watches the mean of the validation macro-F1 of every sentence task and the
    entity micro-F1. Only the train and validation splits are read; test splits are never looked at.

    Args:
        tasks: The sentence tasks (one or more, distinct tasks and directories).
        entity_data: The tagger's data set.
        spec: Tagger head, adapter and how the tasks are mixed.
        args: Trainer settings; ``args.label_smoothing`` is ignored (each task has its own).
        encoder: A loaded, adapter-free encoder; the adapter is added to it in place.
        ner_out: The tagger's checkpoint directory.
        backend: Where the heads' circuits run during training.
        command: The command line to record in every ``config.json``.
        skipped_spans: Spans the loader skipped, recorded with the tagger.
        teacher: A tagger whose entities on the sentence tasks' training texts become their
            tagging targets (see the module doc). Validation texts stay untagged, so validation
            scores read gold labels only.
        warm_start: Start the shared adapter and the tagger head from the teacher's own (a LoRA
            tagger with the same tags and head shape): training then begins from a model that
            already tags as the teacher does, and ``spec.lora`` and ``spec.tagger_head`` are not used.
        init_from: LoRA models of the run's tasks (e.g. a topic model trained alone, or every
            checkpoint of an earlier joint run): the shared adapter starts as theirs (they must
            share one) and each one's task head as its head, so the run begins from what the
            adapter already knows. With ``warm_start`` too, the tagger head comes from the teacher
            unless a tagger is among them.
        distil_from: Sentence classifiers of the run's tasks, at most one a task (e.g. a topic model
            trained on an adapter of its own): their probabilities on that task's training texts
            become part of its targets (``spec.distil_weight``, ``spec.distil_temperature``), so
            the shared adapter learns from a model that had the encoder to itself. A soft-label
            file (a ``Path``) teaches the texts it holds, e.g. probabilities from teachers that
            never trained on them; the others learn from their gold labels alone.
        callbacks, checkpointing: Passed to the :class:`~finetune.training.trainer.Trainer`.
    """
    start = time.perf_counter()
    tasks = list(tasks)
    _check_tasks(tasks, Path(ner_out))
    labels = {t.task: sorted({ex.label for ex in t.data.train}) for t in tasks}
    tags = bio_tags(entity_data.entity_types)
    with recorded_data_warnings() as problems:
        tag_train, tag_val = bio_rows(entity_data.train), bio_rows(entity_data.validation)
    n_words = max(len(words) for _, words, _ in tag_train + tag_val)
    # The heads' initial weights are seeded too, so one seed gives one model.
    heads = [build_head(t.head, encoder, len(labels[t.task]), backend, seed=args.seed + k) for k, t in enumerate(tasks)]
    tagger_head = build_head(spec.tagger_head, encoder, len(tags), backend)
    lora = spec.lora
    if init_from:
        if warm_start and any(isinstance(m, EntityTagger) for m in init_from):
            raise ValueError("--init-from gives a tagger, so the tagger head starts from it; drop --warm-start")
        lora, started = _init_from(encoder, init_from, tasks, labels, heads, tags, backend,
                                   widen_to=spec.widen_to, seed=args.seed)
        if started is not None:
            tagger_head = started
        elif warm_start:
            tagger_head = _warm_start_head(teacher, tags, backend, encoder)
    elif spec.widen_to is not None:
        raise ValueError("widen_to widens an adapter the run starts from; give init_from too")
    elif warm_start:
        lora, tagger_head = _warm_start(encoder, teacher, tags, backend)
    else:
        add_adapter(encoder, lora)
    blocks = task_blocks(len(tags), [(t.task, len(labels[t.task])) for t in tasks])

    sentence_train = [(block, ex) for block, t in zip(blocks, tasks) for ex in t.data.train]
    taught, covered = _distil_targets(distil_from, tasks, labels, spec.distil_temperature, progress=args.progress)
    sentence_val = [(block, ex) for block, t in zip(blocks, tasks) for ex in t.data.validation]
    pseudo = (pseudo_tag_rows(teacher, [ex.text for _, ex in sentence_train], tags, progress=args.progress)
              if teacher else [])
    n_words = max([n_words, *(len(words) for _, words, _ in pseudo)])
    model = JointModel(encoder, heads, tagger_head, n_words)

    def rows(sentences: list[tuple[Block, TextExample]], tagged: list[Any], repeat: int,
             pseudo: list[Any]) -> tuple[list[Item], torch.Tensor]:
        items: list[Item] = [(ex.text, None) for _, ex in sentences]
        target = torch.full((len(sentences) + repeat * len(tagged), 1 + n_words), IGNORE, dtype=torch.long)
        for i, ((name, lo, _), ex) in enumerate(sentences):
            target[i, 0] = lo + labels[name].index(ex.label)
        if pseudo:
            items, target[: len(sentences), 1:] = padded_tag_rows(encoder, pseudo, tags, n_words)
        _, word_labels = padded_tag_rows(encoder, tagged, tags, n_words)
        for r in range(repeat):
            lo = len(sentences) + r * len(tagged)
            target[lo : lo + len(tagged), 1:] = word_labels
            items += [(text, words) for text, words, _ in tagged]
        return items, target

    items_train, y_train = rows(sentence_train, tag_train, spec.tagging_repeat, pseudo)
    if taught:
        soft = soft_columns(len(y_train), blocks, len(tags), taught, [len(t.data.train) for t in tasks])
        y_train = torch.cat([y_train.float(), soft], dim=1)
    items_val, y_val = rows(sentence_val, tag_val, 1, [])

    def score(gold: np.ndarray, logits: np.ndarray) -> float:
        scores = joint_scores(gold, logits, tags, blocks)
        parts = [scores[f"{t.task}_macro_f1"] for t in tasks] + [scores["entity_f1"]]
        return sum(parts) / len(parts)

    loss = joint_loss(len(tags), tagging_weight=spec.tagging_weight, blocks=blocks,
                      smoothings=[t.smoothing for t in tasks], weights=[t.weight for t in tasks],
                      pseudo_weight=spec.pseudo_tagging_weight if teacher else 0.0,
                      distil_weight=spec.distil_weight if taught else 0.0)
    trainer, result = fit(model, args, (items_train, y_train), (items_val, y_val), score_fn=score, loss_fn=loss,
                          callbacks=callbacks, checkpointing=checkpointing)
    val = joint_scores(y_val.numpy(), trainer.predict_logits(items_val).numpy(), tags, blocks)
    seconds = time.perf_counter() - start

    paths = {t.task: t.out for t in tasks} | {NER_TASK: Path(ner_out)}
    shared = mode_settings(lora, joint={
        "tasks": [*(t.task for t in tasks), NER_TASK], "tagging_repeat": spec.tagging_repeat,
        "tagging_weight": spec.tagging_weight,
        "sentence_tasks": {t.task: {"data": t.data.name, "smoothing": t.smoothing, "weight": t.weight} for t in tasks},
        "entity_data": entity_data.name,
        "teacher": str(teacher.checkpoint.path) if teacher else None, "warm_start": warm_start,
        "init_from": [str(m.checkpoint.path) for m in init_from],
        **({"widened_to": spec.widen_to} if spec.widen_to is not None else {}),
        "distil_from": {task: str(m if isinstance(m, Path) else m.checkpoint.path)
                        for task, m in zip(taught, distil_from)},
        **({"distil_weight": spec.distil_weight, "distil_temperature": spec.distil_temperature,
            "distil_covered": covered} if distil_from else {}),
        "pseudo_tagging_weight": spec.pseudo_tagging_weight if teacher else 0.0,
        "pseudo_tagged_texts": len(pseudo), "pseudo_entities": sum(len(bio_to_spans(w, t)) for _, w, t in pseudo),
    })
    common = {"best_epoch": result.best_epoch, "val_joint_score": result.best_score, "train_seconds": seconds,
              "history": result.history}
    training = {**args.to_dict(), **{f"{t.task}_data": t.data.name for t in tasks}, "entity_data": entity_data.name,
                **{f"{t.task}_train_examples": len(t.data.train) for t in tasks},
                "entity_train_examples": len(entity_data.train)}

    def partners(task: str) -> dict[str, Any]:
        return {**shared["joint"], "partners": {name: str(path) for name, path in paths.items() if name != task}}

    for t, head in zip(tasks, heads):
        save_model(
            t.out, task=t.task, head=head, labels=labels[t.task], encoder=encoder,
            training={**training, "data": t.data.name, "train_examples": len(t.data.train)},
            settings={**shared, "joint": partners(t.task)},
            metrics={**common, "val_macro_f1": val[f"{t.task}_macro_f1"], "val_accuracy": val[f"{t.task}_accuracy"],
                     "head_parameters": count_parameters(head)},
            command=command, with_adapter=True,
        )
    save_model(
        paths[NER_TASK], task=NER_TASK, head=tagger_head, labels=tags, encoder=encoder,
        training={**training, "data": entity_data.name, "train_examples": len(entity_data.train),
                  "skipped_spans": skipped_spans + len(problems)},
        settings={**shared, "entity_types": entity_data.entity_types, "joint": partners(NER_TASK)},
        metrics={**common, "val_entity_f1": val["entity_f1"], "head_parameters": count_parameters(tagger_head),
                 "skipped_spans": skipped_spans + len(problems)},
        command=command, with_adapter=True,
    )
    tagger = EntityTagger.load(paths[NER_TASK], backend=backend)
    tagger.adopt_encoder(encoder)  # carries the trained adapter
    metrics = {**common, "val": val, "skipped_spans": skipped_spans + len(problems),
               "decoding": fit_decoding(tagger, entity_data)}
    classifiers = {t.task: TextClassifier.load(t.out, backend=backend) for t in tasks}
    return TrainedJoint(paths, classifiers, tagger, result, metrics)


def _distil_targets(teachers: Sequence[TextClassifier | Path], tasks: Sequence[SentenceTask],
                    labels: dict[str, list[str]], temperature: float, *,
                    progress: bool = False) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
    """Each teacher's probabilities on its task's training texts, by task, and how many of those
    texts each covers. A teacher is a classifier, or a soft-label file (``agent finetune
    soft-labels``), whose task is the one with its label set and which covers the texts it holds."""
    names = [t.task for t in tasks]
    out: dict[str, torch.Tensor] = {}
    covered: dict[str, int] = {}
    for teacher in teachers:
        if isinstance(teacher, Path):
            path, held = teacher, soft_label_names(teacher)
            task = next((n for n in names if labels[n] == held), None)
            if task is None:
                raise ValueError(f"--distil-from {path} has the labels {held}, those of no task "
                                 f"the run trains ({', '.join(names)})")
        else:
            path, task = teacher.checkpoint.path, teacher.task
            if task not in names:
                raise ValueError(f"--distil-from {path} is a {task} model; the run trains {', '.join(names)}")
        if task in out:
            raise ValueError(f"--distil-from gives two {task} teachers; give each task at most one")
        texts = [ex.text for ex in tasks[names.index(task)].data.train]
        if isinstance(teacher, Path):
            out[task], covered[task] = file_probabilities(teacher, texts, labels[task], temperature=temperature)
        else:
            out[task] = teacher_probabilities(teacher, texts, labels[task], temperature=temperature, progress=progress)
            covered[task] = len(texts)
    return out, covered


def _check_tasks(tasks: list[SentenceTask], ner_out: Path) -> None:
    if not tasks:
        raise ValueError("joint training needs at least one sentence task beside the tagger")
    names = [t.task for t in tasks]
    if len(set(names)) != len(names):
        raise ValueError(f"each sentence task may appear once; got {names}")
    folders = [t.out.resolve() for t in tasks] + [ner_out.resolve()]
    if len(set(folders)) != len(folders):
        raise ValueError("every model needs its own output directory")
