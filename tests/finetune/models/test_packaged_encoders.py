"""all-mpnet-base-v2 from its five pypi part packages: reassembled locally, clear errors otherwise."""

import importlib.metadata
import io
import zipfile
from pathlib import Path

import pytest

from finetune.models import packaged_encoders
from finetune.models.encoder import EncoderConfig, EncoderError
from finetune.models.packaged_encoders import MPNET_PARTS, PackagedEncoderError, mpnet_model_dir, mpnet_parts


class _Dist:
    """A stand-in installed distribution holding one piece of the split zip."""

    def __init__(self, piece: Path) -> None:
        self.piece = piece
        self.files = [importlib.metadata.PackagePath("x", "input", piece.name)]

    def locate_file(self, _file) -> Path:
        return self.piece


def _install(monkeypatch, tmp_path, pieces: dict[str, bytes]) -> None:
    dists = {}
    for i, (package, data) in enumerate(pieces.items(), start=1):
        piece = tmp_path / "site" / f"all-mpnet-base-v2.zip.00{i}"
        piece.parent.mkdir(parents=True, exist_ok=True)
        piece.write_bytes(data)
        dists[package] = _Dist(piece)

    def distribution(name):
        if name not in dists:
            raise importlib.metadata.PackageNotFoundError(name)
        return dists[name]

    monkeypatch.setattr(packaged_encoders.importlib.metadata, "distribution", distribution)


def _split_zip() -> list[bytes]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("all-mpnet-base-v2/config.json", '{"model_type": "mpnet"}')
        archive.writestr("all-mpnet-base-v2/tokenizer.json", "{}")
        archive.writestr("all-mpnet-base-v2/desktop.ini", "[.ShellClassInfo]")
    data = buffer.getvalue()
    size = -(-len(data) // 5)
    return [data[i * size : (i + 1) * size] for i in range(5)]


def test_missing_parts_say_which_and_how_to_install(monkeypatch, tmp_path):
    _install(monkeypatch, tmp_path, {MPNET_PARTS[0]: b"x", MPNET_PARTS[2]: b"y"})
    with pytest.raises(PackagedEncoderError) as error:
        mpnet_parts()
    message = str(error.value)
    assert "\n" not in message
    assert f"pip install {MPNET_PARTS[1]} {MPNET_PARTS[3]} {MPNET_PARTS[4]}" in message


def test_the_encoder_config_turns_missing_parts_into_an_encoder_error(monkeypatch, tmp_path):
    _install(monkeypatch, tmp_path, {})
    monkeypatch.setenv("QAGENT_HOME", str(tmp_path / "home"))
    with pytest.raises(EncoderError, match=f"pip install {' '.join(MPNET_PARTS)}"):
        EncoderConfig(model="mpnet").model_path  # noqa: B018


def test_the_pieces_are_joined_and_unpacked_once(monkeypatch, tmp_path):
    _install(monkeypatch, tmp_path, dict(zip(MPNET_PARTS, _split_zip())))
    folder = mpnet_model_dir(tmp_path / "cache")
    assert folder == tmp_path / "cache" / "all-mpnet-base-v2"
    assert (folder / "config.json").read_text() == '{"model_type": "mpnet"}'
    assert not (folder / "desktop.ini").exists()
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["all-mpnet-base-v2"]  # no scratch left
    _install(monkeypatch, tmp_path / "gone", {})  # the parts are no longer needed once unpacked
    assert mpnet_model_dir(tmp_path / "cache") == folder


def test_pieces_that_are_no_zip_say_to_reinstall(monkeypatch, tmp_path):
    _install(monkeypatch, tmp_path, {name: b"not a zip" for name in MPNET_PARTS})
    with pytest.raises(PackagedEncoderError, match="do not form a zip.*reinstall"):
        mpnet_model_dir(tmp_path / "cache")
    assert not (tmp_path / "cache" / "all-mpnet-base-v2").exists()
