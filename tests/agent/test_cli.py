import json

from typer.testing import CliRunner

from agent.cli import app

runner = CliRunner()


def test_help_lists_the_command_groups():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for group in ("backends", "bench", "demo"):
        assert group in result.output


def test_demo_quantum_trains_and_reports_on_the_exact_backend(tmp_path):
    out = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "quantum", "--backend", "exact", "--epochs", "3", "--samples", "60", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert 0.0 <= report["trained"]["exact"]["test_accuracy"] <= 1.0
    assert report["exact_weights_on_each_backend"]["exact"]["max_abs_readout_diff_vs_exact"] == 0.0
    assert (out / "demo_report.json").is_file()
    assert (out / "training_exact.png").stat().st_size > 0


def test_demo_quantum_bad_input_is_one_line_not_a_traceback(tmp_path):
    result = runner.invoke(app, ["demo", "quantum", "--backend", "exact", "--samples", "5", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.strip() == "error: n_samples must be >= 20, got 5"


def _help_texts(command, path=("agent",)):
    """(where, text) of every command's and option's help in the CLI tree."""
    yield " ".join(path), command.help or ""
    for param in command.params:
        yield f"{' '.join(path)} {param.name}", getattr(param, "help", None) or ""
    for name, sub in getattr(command, "commands", {}).items():
        yield from _help_texts(sub, (*path, name))


def test_help_texts_lose_no_brackets_to_rich_markup():
    import typer
    from rich.text import Text

    texts = list(_help_texts(typer.main.get_command(app)))
    assert len(texts) > 100
    for where, text in texts:  # '[bench]' unescaped would be read as a style and vanish
        assert Text.from_markup(text).plain == text.replace("\\[", "["), where
    result = runner.invoke(app, ["bench", "quantum", "--help"], env={"COLUMNS": "300"})
    assert "pip install -e '.[bench]'" in result.output
