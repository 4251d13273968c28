"""Checksums of model folders: the shipped models carry them, ensembles cover their members, and
``agent finetune checksums`` verifies, records and prints the digest that pins a model."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from typer.testing import CliRunner

from agent.shipped import MODELS
from finetune.models.checkpoint import CheckpointError, load_checkpoint
from finetune.models.ensemble import read_record
from finetune.models.integrity import MANIFEST, manifest_digest, model_files, verify_checksums


SHIPPED = sorted(p for p in MODELS.iterdir() if p.is_dir())
runner = CliRunner()


@pytest.mark.parametrize("model", SHIPPED, ids=[p.name for p in SHIPPED])
def test_every_shipped_model_has_checksums_that_match(model):
    assert (model / MANIFEST).is_file(), f"record them with: agent finetune checksums {model} --record"
    assert verify_checksums(model) == manifest_digest(model)
    for member in read_record(model).members if (model / "ensemble.json").is_file() else []:
        assert verify_checksums(model / member) == manifest_digest(model / member)
    recorded = json.loads((model / MANIFEST).read_text())["sha256"]
    assert sorted(recorded) == sorted(model_files(model))  # nothing of the model left out


def test_an_ensemble_covers_its_members_files(tmp_path):
    ensemble = shutil.copytree(MODELS / "sentiment", tmp_path / "sentiment")
    member = ensemble / read_record(ensemble).members[0]
    (member / "labels.json").write_text(json.dumps(["positive", "negative", "neutral"]))  # shuffled
    with pytest.raises(CheckpointError, match=rf"{re.escape(str(member))}/labels\.json does not match its checksum"):
        read_record(ensemble)
    with pytest.raises(CheckpointError, match=r"labels\.json does not match its checksum"):
        load_checkpoint(member)


def test_cli_verifies_records_and_prints_the_digest(tmp_path):
    from agent.cli import app

    model = shutil.copytree(MODELS / "chat-sentiment", tmp_path / "m")
    result = runner.invoke(app, ["finetune", "checksums", str(model)])
    assert result.exit_code == 0, result.output
    assert manifest_digest(model) in result.output and "verified" in result.output

    (model / MANIFEST).unlink()
    result = runner.invoke(app, ["finetune", "checksums", str(model)])
    assert result.exit_code == 1 and "has no checksums.json" in result.output and "--record" in result.output
    result = runner.invoke(app, ["finetune", "checksums", str(model), "--record", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["sha256"] == manifest_digest(model)

    (model / "labels.json").write_text(json.dumps(["positive", "negative", "neutral"]))
    result = runner.invoke(app, ["finetune", "checksums", str(model)])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and "labels.json does not match its checksum" in lines[0]
