import numpy as np
import pytest
import torch

from finetune.models.heads import Head, HeadConfig
from finetune.quantum.ansatz import AnsatzConfig
from finetune.training.trainer import Checkpointing, Trainer, TrainerCallback, TrainingArguments, macro_f1


def blobs(n=120, d=8, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    centers = 3 * torch.randn(classes, d, generator=g)
    y = torch.arange(n) % classes
    x = centers[y] + torch.randn(n, d, generator=g)
    return x, y


def fit(kind="linear", seed=0, epochs=15, log_dir=None, callbacks=()):
    x, y = blobs()
    torch.manual_seed(seed)
    head = Head(HeadConfig(kind=kind, in_features=8, n_classes=3, n_circuits=1, dropout=0.0,
                           ansatz=AnsatzConfig(n_qubits=2, depth=1, encoding="amplitude")))
    args = TrainingArguments(epochs=epochs, batch_size=16, lr=0.05, seed=seed, progress=False, log_dir=log_dir)
    trainer = Trainer(head, args, callbacks=callbacks)
    result = trainer.fit(x[:90], y[:90], x[90:], y[90:])
    return trainer, result, (x, y)


@pytest.mark.parametrize("kind", ["linear", "quantum", "hybrid"])
def test_learns_separable_blobs(kind):
    trainer, result, (x, y) = fit(kind)
    logits = trainer.predict_logits(x[90:])
    assert macro_f1(y[90:].numpy(), logits.numpy()) > 0.9
    assert result.best_score == max(row["val_score"] for row in result.history)


def test_same_seed_gives_the_same_model():
    a, _, (x, _) = fit("quantum", seed=3, epochs=3)
    b, _, _ = fit("quantum", seed=3, epochs=3)
    assert torch.equal(a.predict_logits(x), b.predict_logits(x))


def test_early_stopping_restores_the_best_epoch():
    x, y = blobs()
    y_noise = torch.randint(0, 3, (30,), generator=torch.Generator().manual_seed(1))  # unlearnable
    head = Head(HeadConfig(kind="linear", in_features=8, n_classes=3, dropout=0.0))
    args = TrainingArguments(epochs=40, batch_size=16, lr=0.05, patience=2, progress=False)
    trainer = Trainer(head, args)
    result = trainer.fit(x[:90], y[:90], x[90:], y_noise)
    assert len(result.history) < 40
    restored = macro_f1(y_noise.numpy(), trainer.predict_logits(x[90:]).numpy())
    assert restored == pytest.approx(result.best_score)


def test_reports_every_epoch_to_callbacks_and_tensorboard(tmp_path):
    seen = []
    _, result, _ = fit(epochs=3, log_dir=str(tmp_path / "tb"), callbacks=[seen.append])
    assert [row["epoch"] for row in seen] == [1, 2, 3] == [row["epoch"] for row in result.history]
    assert set(seen[0]) >= {"train_loss", "val_loss", "val_score", "seconds"}
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))


def test_texts_as_inputs_work_with_a_model_that_takes_lists():
    class Lengths(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(1, 2)

        def forward(self, texts):
            return self.layer(torch.tensor([[len(t) / 10.0] for t in texts]))

    texts = ["a" * (1 + i % 3) if i % 2 else "b" * (20 + i % 5) for i in range(40)]
    labels = torch.tensor([i % 2 for i in range(40)])
    trainer = Trainer(Lengths(), TrainingArguments(epochs=30, batch_size=8, lr=0.1, progress=False))
    trainer.fit(texts[:30], labels[:30], texts[30:], labels[30:])
    assert (trainer.predict_logits(texts[30:]).argmax(-1) == labels[30:]).float().mean() > 0.9


@pytest.mark.parametrize(
    "changes, message",
    [({"epochs": 0}, "epochs"), ({"lr": 0}, "lr must be > 0"), ({"label_smoothing": 1.0}, "label_smoothing"),
     ({"max_grad_norm": -1.0}, "max_grad_norm")],
)
def test_arguments_validate(changes, message):
    with pytest.raises(ValueError, match=message):
        TrainingArguments(**changes)


def test_empty_or_mismatched_data_is_refused():
    trainer = Trainer(Head(HeadConfig(kind="linear", in_features=2)), TrainingArguments(progress=False))
    x = torch.zeros(4, 2)
    with pytest.raises(ValueError, match="same length"):
        trainer.fit(x, torch.zeros(3, dtype=torch.long), x, torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="must not be empty"):
        trainer.fit(x[:0], torch.zeros(0, dtype=torch.long), x, torch.zeros(4, dtype=torch.long))


def test_without_validation_data_every_epoch_runs_and_the_last_weights_stay():
    x, y = blobs()
    head = Head(HeadConfig(kind="linear", in_features=8, n_classes=3, dropout=0.0))
    seen, logits_by_epoch = [], []

    def on_epoch_end(record):
        seen.append(record)
        with torch.no_grad():
            logits_by_epoch.append(head(x).clone())

    trainer = Trainer(head, TrainingArguments(epochs=4, batch_size=16, lr=0.05, patience=1, progress=False),
                      callbacks=[on_epoch_end])
    result = trainer.fit(x, y, x[:0], y[:0])
    assert result.best_epoch == 4 and result.best_score is None
    assert [row["epoch"] for row in result.history] == [1, 2, 3, 4]  # patience plays no part
    assert "val_score" not in seen[-1] and seen[-1]["train_loss"] < seen[0]["train_loss"]
    assert torch.equal(trainer.predict_logits(x), logits_by_epoch[-1])
    assert not torch.equal(logits_by_epoch[0], logits_by_epoch[-1])
    assert macro_f1(y.numpy(), trainer.predict_logits(x).numpy()) > 0.9


def test_macro_f1_matches_sklearn_on_a_known_case():
    labels = np.array([0, 0, 1, 1])
    logits = np.array([[1, 0], [0, 1], [0, 1], [0, 1]], dtype=float)
    assert macro_f1(labels, logits) == pytest.approx((2 / 3 + 0.8) / 2)


# --- mid-run checkpoints and resume ----------------------------------------------------------


class StopAt(TrainerCallback):
    """Simulates a crash: raises after optimisation step ``step`` (nothing after it runs)."""

    def __init__(self, step):
        self.step = step

    def on_step(self, epoch, step, total_steps):
        if step == self.step:
            raise KeyboardInterrupt(f"killed at step {step}")


def resumable_fit(kind, tmp_path, seed=0, epochs=4, every=4, callbacks=(), resume=False, patience=5, backend="exact"):
    x, y = blobs()
    torch.manual_seed(seed)
    head = Head(HeadConfig(kind=kind, in_features=8, n_classes=3, n_circuits=1, dropout=0.2,
                           ansatz=AnsatzConfig(n_qubits=2, depth=1, encoding="amplitude")), backend=backend)
    args = TrainingArguments(epochs=epochs, batch_size=16, lr=0.05, seed=seed, progress=False, patience=patience)
    checkpointing = Checkpointing(tmp_path / "ckpt", every_steps=every,
                                  resume_from=tmp_path / "ckpt" if resume else None)
    trainer = Trainer(head, args, callbacks=callbacks, checkpointing=checkpointing)
    result = trainer.fit(x[:90], y[:90], x[90:], y[90:])
    return trainer, result, x


def without_seconds(history):
    return [{key: value for key, value in row.items() if key != "seconds"} for row in history]


@pytest.mark.parametrize(("kind", "crash_step"), [("hybrid", 9), ("quantum", 13), ("linear", 12)])
def test_a_run_killed_mid_epoch_resumes_to_the_same_model(tmp_path, kind, crash_step):
    # 90 examples / 16 = 6 steps per epoch; checkpoints every 4 steps and at epoch ends, so the
    # crash at step 9 resumes from step 8 (mid-epoch 2), step 13 from 12 (the end of epoch 2).
    reference, expected, x = resumable_fit(kind, tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        resumable_fit(kind, tmp_path / "b", callbacks=[StopAt(crash_step)])
    resumed, result, _ = resumable_fit(kind, tmp_path / "b", resume=True)
    assert without_seconds(result.history) == without_seconds(expected.history)
    assert (result.best_epoch, result.best_score) == (expected.best_epoch, expected.best_score)
    assert torch.allclose(resumed.predict_logits(x), reference.predict_logits(x), atol=1e-6)


def test_a_spsa_run_on_aer_resumes_with_the_same_shot_noise(tmp_path):
    # Shots and SPSA directions are random streams outside torch: the layer's training_state.
    backend = "aer:shots=256"
    reference, expected, x = resumable_fit("quantum", tmp_path / "a", epochs=2, backend=backend)
    with pytest.raises(KeyboardInterrupt):
        resumable_fit("quantum", tmp_path / "b", epochs=2, callbacks=[StopAt(7)], backend=backend)
    _, result, _ = resumable_fit("quantum", tmp_path / "b", epochs=2, resume=True, backend=backend)
    assert without_seconds(result.history) == without_seconds(expected.history)


def test_resume_continues_reporting_from_the_checkpoint_step(tmp_path):
    steps = []

    class Steps(TrainerCallback):
        def on_step(self, epoch, step, total_steps):
            steps.append((epoch, step, total_steps))

    with pytest.raises(KeyboardInterrupt):
        resumable_fit("linear", tmp_path, epochs=2, callbacks=[StopAt(9)])
    resumable_fit("linear", tmp_path, epochs=2, resume=True, callbacks=[Steps()])
    assert steps[0] == (2, 9, 12) and steps[-1] == (2, 12, 12)


def test_resume_refuses_a_checkpoint_of_another_setup(tmp_path):
    from finetune.training.train_state import TrainStateError

    resumable_fit("linear", tmp_path, epochs=1)
    with pytest.raises(TrainStateError, match="different training setup \\(epochs: 1 there, 3 now\\)"):
        resumable_fit("linear", tmp_path, epochs=3, resume=True)


def test_a_full_disk_at_a_checkpoint_warns_and_keeps_the_previous_one(tmp_path, monkeypatch, caplog):
    import errno
    import os

    from finetune.training.train_state import load_train_state

    seen = []

    class FillDisk(TrainerCallback):
        def on_checkpoint(self, step, path, error):
            seen.append((step, error))
            if step == 4:  # from now on every write fails as on a full disk
                def full(fd):
                    raise OSError(errno.ENOSPC, "No space left on device")

                monkeypatch.setattr(os, "fsync", full)

    with caplog.at_level("WARNING", logger="finetune.training.trainer"):
        _, result, _ = resumable_fit("linear", tmp_path, epochs=2, callbacks=[FillDisk()])
    assert len(result.history) == 2  # training went on
    assert seen[0] == (4, None) and all(isinstance(error, OSError) for _, error in seen[1:])
    assert [r.getMessage() for r in caplog.records if "could not write the checkpoint" in r.getMessage()] == [
        "could not write the checkpoint at step 6 (OSError: No space left on device); "
        "the previous one stays usable and training goes on"
    ]
    monkeypatch.undo()
    assert load_train_state(tmp_path / "ckpt" / "trainer_state.safetensors").step == 4
    assert [p.name for p in (tmp_path / "ckpt").iterdir()] == ["trainer_state.safetensors"]  # no temp files left


def test_checkpointing_validates_its_interval():
    with pytest.raises(ValueError, match="every_steps must be an integer >= 0"):
        Checkpointing("x", every_steps=-1)
