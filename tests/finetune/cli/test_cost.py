"""`--dry-run` and `--max-qpu-seconds` on the commands that take `--backend` (fake device, offline)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from agent.cli import app

runner = CliRunner()
SMALL = ["--head", "hybrid", "--qubits", "2", "--depth", "1", "--circuits", "1", "--epochs", "2", "--batch-size", "8"]
FAKE = "ibm:fake_manila,shots=100,resilience=1,dd=XY4"


def _finetune(intents_csv, tmp_path, *extra):
    return runner.invoke(app, ["finetune", "intents", "--data", str(intents_csv), *SMALL, "--out", str(tmp_path / "m"),
                               "--backend", FAKE, *extra])


def test_dry_run_prints_the_estimate_and_trains_nothing(intents_csv, tmp_path):
    result = _finetune(intents_csv, tmp_path, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "dry run on fake_manila" in result.output and "estimated QPU time" in result.output
    assert not (tmp_path / "m").exists()
    data = json.loads(_finetune(intents_csv, tmp_path, "--dry-run", "--json").stdout)
    (train,) = data["circuits"]
    assert train["depth"] > 0 and train["two_qubit_gates"] > 0 and train["shots"] == 100
    assert data["qpu_seconds"] > 0 and data["backend"] == FAKE


def test_over_the_limit_is_refused_with_one_line_and_exit_2(intents_csv, tmp_path):
    result = _finetune(intents_csv, tmp_path, "--max-qpu-seconds", "1")
    assert result.exit_code == 2, result.output
    assert "exceed --max-qpu-seconds 1" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "m").exists()


def test_dry_run_needs_an_ibm_backend(intents_csv, tmp_path):
    result = runner.invoke(app, ["finetune", "intents", "--data", str(intents_csv), "--out", str(tmp_path / "m"),
                                 "--backend", "aer:shots=10", "--dry-run"])
    assert result.exit_code == 2 and "needs --backend ibm:<device>" in result.output


def test_eval_dry_run_counts_the_examples(intents_csv, tmp_path):
    model = tmp_path / "model"
    assert runner.invoke(app, ["finetune", "intents", "--data", str(intents_csv), *SMALL, "--epochs", "1",
                               "--out", str(model)]).exit_code == 0
    argv = ["eval", "intents", str(model), "--data", str(intents_csv), "--backend", FAKE, "--dry-run", "--json"]
    few = json.loads(runner.invoke(app, [*argv, "--limit", "1"]).stdout)
    more = json.loads(runner.invoke(app, [*argv, "--limit", "2"]).stdout)
    assert few["circuits"][0]["rows"] == 1 and more["circuits"][0]["rows"] == 2
    assert more["qpu_seconds"] == pytest.approx(2 * few["qpu_seconds"])


def test_ner_dry_run_counts_the_tagger_rows_per_word(tiny_entities_dir, tmp_path):
    def dry(*extra):
        result = runner.invoke(app, ["finetune", "ner", "--data", str(tiny_entities_dir), "--frozen", *SMALL,
                                     "--backend", FAKE, "--out", str(tmp_path / "t"), "--dry-run", "--json", *extra])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    data = dry()
    (train,) = data["circuits"]
    assert data["qpu_seconds"] > 0 and train["depth"] > 0 and train["shots"] == 100
    assert not (tmp_path / "t").exists()  # nothing trained, no run record
    # The tagger's head runs once per word: 2 epochs x (3 SPSA rows per training word + each validation word).
    from finetune.models.encoder import split_words

    def words(split):
        lines = (tiny_entities_dir / f"{split}.jsonl").read_text().splitlines()
        return sum(len(split_words(json.loads(line)["text"])) for line in lines)

    assert train["rows"] == 2 * (3 * words("train") + words("validation"))
    more = dry("--epochs", "4")
    assert more["circuits"][0]["rows"] == 2 * train["rows"]
    refused = runner.invoke(app, ["finetune", "ner", "--data", str(tiny_entities_dir), "--frozen", *SMALL,
                                  "--backend", FAKE, "--out", str(tmp_path / "t"), "--max-qpu-seconds", "0.001"])
    assert refused.exit_code == 2 and "exceed --max-qpu-seconds" in refused.output


def test_eval_dry_run_on_an_ensemble_estimates_each_member(intents_csv, tmp_path):
    from finetune.models.ensemble import write_ensemble
    from finetune.models.loading import load_classifier

    model = tmp_path / "model"
    assert runner.invoke(app, ["finetune", "intents", "--data", str(intents_csv), *SMALL, "--epochs", "1",
                               "--out", str(model)]).exit_code == 0
    labels = load_classifier(model).labels
    ensemble = write_ensemble([model, model], tmp_path / "ensemble", "intents", labels, [1.0, 1.0])
    argv = ["eval", "intents", str(ensemble), "--data", str(intents_csv), "--backend", FAKE, "--limit", "2"]
    result = runner.invoke(app, [*argv, "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "member members/1-model" in result.output and "member members/2-model" in result.output
    assert "Traceback" not in result.output and "is an ensemble of models" not in result.output
    data = json.loads(runner.invoke(app, [*argv, "--dry-run", "--json"]).stdout)
    assert [c["member"] for c in data["circuits"]] == ["members/1-model", "members/2-model"]
    assert data["qpu_seconds"] == pytest.approx(2 * data["members"]["members/1-model"]["qpu_seconds"])
    refused = runner.invoke(app, [*argv, "--max-qpu-seconds", "0.001"])
    assert refused.exit_code == 2 and "exceed --max-qpu-seconds" in refused.output
