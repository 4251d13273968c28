import socket

import pytest
from typer.testing import CliRunner

from agent.cli import app as cli
from ui.server import ServeConfig, check_port, serve

runner = CliRunner()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"port": 0}, "port must be between 1 and 65535, got 0"),
        ({"port": 70000}, "port must be between 1 and 65535, got 70000"),
        ({"auth": "alice"}, "--auth must look like user:password (both parts non-empty)"),
        ({"auth": ":secret"}, "--auth must look like user:password (both parts non-empty)"),
        ({"auth": "alice:"}, "--auth must look like user:password (both parts non-empty)"),
        ({"host": " "}, "host must not be empty (127.0.0.1 keeps the page on this machine)"),
        ({"max_upload_mb": 0}, "max upload size must be > 0 MB, got 0"),
    ],
)
def test_bad_settings_are_refused_with_one_clear_line(kwargs, message):
    with pytest.raises(ValueError) as error:
        ServeConfig(**kwargs)
    assert str(error.value) == message


def test_defaults_stay_on_this_machine_and_the_password_is_never_shown():
    config = ServeConfig(auth="alice:s3cret:with:colons")
    assert config.host == "127.0.0.1" and config.is_loopback and not config.share
    assert config.credentials == ("alice", "s3cret:with:colons")
    assert "s3cret" not in repr(config) and "alice:***" in repr(config)
    assert not ServeConfig(host="0.0.0.0").is_loopback


def test_a_busy_port_is_reported_before_anything_loads(free_port):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ValueError, match=f"cannot listen on 127.0.0.1:{port}"):
            check_port("127.0.0.1", port)
        result = runner.invoke(cli, ["serve", "--port", str(port)])
    assert result.exit_code == 1
    assert result.output.startswith(f"error: cannot listen on 127.0.0.1:{port}")
    assert "Traceback" not in result.output
    check_port("127.0.0.1", free_port)  # a free one passes


def test_serve_command_passes_its_options_on(monkeypatch):
    seen = {}

    def fake_serve(config, load, app_config, say):
        seen.update(config=config, app_config=app_config)

    monkeypatch.setattr("ui.server.serve", fake_serve)
    result = runner.invoke(cli, ["serve", "--host", "0.0.0.0", "--port", "8123", "--share", "--max-upload-mb", "5",
                                 "--monitor-models", "assistant"], env={"QAGENT_UI_AUTH": "alice:pw"})
    assert result.exit_code == 0, result.output
    config = seen["config"]
    assert (config.host, config.port, config.share, config.credentials) == ("0.0.0.0", 8123, True, ("alice", "pw"))
    assert (seen["app_config"].max_upload_mb, seen["app_config"].monitor_models) == (5, "assistant")


def test_unknown_monitor_models_fail_in_one_line():
    result = runner.invoke(cli, ["serve", "--monitor-models", "both"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "--monitor-models" in result.output and "must be one of news, assistant; got 'both'" in result.output


def test_bad_auth_fails_in_one_line_without_loading_models():
    result = runner.invoke(cli, ["serve", "--auth", "nopassword"])
    assert result.exit_code == 1
    assert result.output.strip() == "error: --auth must look like user:password (both parts non-empty)"


def test_serving_beyond_this_machine_without_a_login_warns_first(free_port):
    said = []

    def load(say):
        raise RuntimeError("stop before anything is served")

    with pytest.raises(RuntimeError, match="stop before"):
        serve(ServeConfig(host="0.0.0.0", port=free_port), load, say=said.append)
    assert said == ["warning: listening on 0.0.0.0 without --auth: anyone who can reach this machine can use the page"]


def test_a_pinned_index_with_another_digest_never_serves(monkeypatch, tmp_path):
    import faiss
    import numpy as np

    from retrieval.documents import Document
    from retrieval.index import Index, index_digest

    flat = faiss.IndexFlatIP(2)
    flat.add(np.eye(1, 2, dtype=np.float32))
    index = Index(flat, [Document("a", "A", "Answer A.")], encoder_id="fake").save(tmp_path / "idx")
    served = []
    monkeypatch.setattr("ui.server.serve", lambda *args, **kwargs: served.append(args))
    digest = index_digest(index)
    result = runner.invoke(cli, ["serve", "--index", str(index), "--expect-sha256", digest])
    assert result.exit_code == 0 and len(served) == 1, result.output
    result = runner.invoke(cli, ["serve", "--index", str(index), "--expect-sha256", "f" * 64])
    assert result.exit_code == 1 and len(served) == 1
    assert result.output.startswith(f"error: index {index} is not the pinned one") and len(result.output.splitlines()) == 1
