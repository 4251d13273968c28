"""IBM Quantum failures told apart: no account, a refused token, no connection (never the network).

The classifier is fed the exception types qiskit-ibm-runtime and its HTTP stack really raise; the
end-to-end tests run the real ``QiskitRuntimeService`` against a fake IAM token endpoint on
127.0.0.1 (``IAM_URL``, the variable qiskit-ibm-runtime reads for its token server) or a closed
loopback port.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

from finetune.quantum.backends import get_backend
from finetune.quantum.device import BackendConfigError

TOKEN = "tok-SECRET-0123456789abcdefghijklmnopqrstuvwxyzABCD"


def _chained(outer: BaseException, *causes: BaseException) -> BaseException:
    """``outer`` raised from ``causes[0]``, raised from ``causes[1]``… as the library chains them."""
    for exc, cause in zip((outer, *causes), causes):
        exc.__cause__ = cause
    return outer


def _invalid_account(cause: BaseException) -> BaseException:
    from qiskit_ibm_runtime.accounts import InvalidAccountError

    # What Account.list_instances raises for *any* failure of IBM Cloud's search (0.51).
    return _chained(InvalidAccountError(
        "Unable to retrieve instances. Please check that you are using a valid API token."), cause)


def _api_exception(status: int, message: str) -> BaseException:
    from ibm_cloud_sdk_core import ApiException

    return ApiException(status, message=message)


def _dns_failure() -> BaseException:
    import requests

    return _chained(requests.exceptions.ConnectionError(
        "HTTPSConnectionPool(host='iam.cloud.ibm.com', port=443): Max retries exceeded"),
        socket.gaierror(-2, "Name or service not known"))


def _examples() -> list[tuple[str, BaseException, object]]:
    import requests
    from finetune.quantum.ibm_errors import IBMFailure

    from qiskit_ibm_runtime.accounts import AccountNotFoundError, InvalidAccountError
    from qiskit_ibm_runtime.api.exceptions import RequestsApiError
    from qiskit_ibm_runtime.exceptions import IBMInputValueError, IBMNotAuthorizedError

    return [
        ("no saved account", AccountNotFoundError("Unable to find account."), IBMFailure.NO_ACCOUNT),
        ("bad saved settings", InvalidAccountError("Invalid `channel` value."), IBMFailure.NO_ACCOUNT),
        ("IAM: key not found", _invalid_account(_api_exception(400, "Provided API key could not be found.")),
         IBMFailure.REFUSED),
        ("IAM: 401", _invalid_account(_api_exception(401, "Unauthorized")), IBMFailure.REFUSED),
        ("IAM: 403", _invalid_account(_api_exception(403, "Forbidden")), IBMFailure.REFUSED),
        ("runtime API: 401", _chained(IBMNotAuthorizedError("401 Client Error"), requests.HTTPError("401")),
         IBMFailure.REFUSED),
        ("runtime API: 403", RequestsApiError("403 Client Error: Forbidden", 403), IBMFailure.REFUSED),
        ("DNS", _invalid_account(_dns_failure()), IBMFailure.UNREACHABLE),
        ("refused connection", _invalid_account(_chained(
            requests.exceptions.ConnectionError("Max retries exceeded"), ConnectionRefusedError(111, "refused"))),
         IBMFailure.UNREACHABLE),
        ("proxy", _invalid_account(requests.exceptions.ProxyError("Cannot connect to proxy.")), IBMFailure.UNREACHABLE),
        ("timeout", _chained(RequestsApiError("Read timed out.", -1), requests.exceptions.ReadTimeout("timed out")),
         IBMFailure.UNREACHABLE),
        ("socket timeout", TimeoutError("timed out"), IBMFailure.UNREACHABLE),
        ("IBM down", _invalid_account(_api_exception(503, "Service Unavailable")), IBMFailure.OTHER),
        ("instance not in account", IBMInputValueError("The given API token is associated with an account that "
                                                       "does not have access to the instance x."), IBMFailure.OTHER),
    ]


@pytest.mark.parametrize("index", range(14))
def test_each_library_failure_maps_to_its_case(index):
    from finetune.quantum.ibm_errors import classify_ibm_error

    label, exc, expected = _examples()[index]
    assert classify_ibm_error(exc) is expected, label


def test_the_three_cases_say_what_to_do_in_one_line(monkeypatch):
    from finetune.quantum.ibm_errors import ibm_error_message

    monkeypatch.delenv("QISKIT_IBM_TOKEN", raising=False)
    from qiskit_ibm_runtime.accounts import AccountNotFoundError

    missing = ibm_error_message(AccountNotFoundError("Unable to find account."))
    assert missing.startswith("IBM Quantum is not configured")
    assert "QiskitRuntimeService.save_account(token=..., instance=...)" in missing and "QISKIT_IBM_TOKEN" in missing

    refused = ibm_error_message(_invalid_account(_api_exception(400, "Provided API key could not be found.")))
    assert refused.startswith("IBM Quantum refused the API token of the saved account")
    assert "overwrite=True" in refused and "not configured" not in refused

    monkeypatch.setenv("QISKIT_IBM_TOKEN", TOKEN)
    refused_env = ibm_error_message(_invalid_account(_api_exception(401, "Unauthorized")))
    assert refused_env.startswith("IBM Quantum refused the API token in QISKIT_IBM_TOKEN")

    unreachable = ibm_error_message(_invalid_account(_dns_failure()))
    assert unreachable.startswith("IBM Quantum could not be reached")
    assert "network" in unreachable and "proxy" in unreachable and "token" not in unreachable.split(";")[0]
    for message in (missing, refused, refused_env, unreachable):
        assert "\n" not in message and TOKEN not in message


def test_other_errors_keep_their_detail_with_the_token_masked(monkeypatch):
    from finetune.quantum.ibm_errors import ibm_error_message

    monkeypatch.setenv("QISKIT_IBM_TOKEN", TOKEN)
    message = ibm_error_message(RuntimeError(f"boom for token {TOKEN}\nsecond line"))
    assert TOKEN not in message and "***" in message and "\n" not in message
    assert "RuntimeError: boom for token ***" in message


# --- the real service against a fake token server on 127.0.0.1 ------------------------------


class _FakeIAM(BaseHTTPRequestHandler):
    """IBM Cloud IAM's token endpoint refusing every key, as it answers an invalid or expired one."""

    status = 400

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers.get("content-length", 0)))
        body = json.dumps({"errorCode": "BXNIM0415E", "errorMessage": "Provided API key could not be found.",
                           "context": {}}).encode()
        self.send_response(self.status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(params=[400, 401, 403])
def refusing_iam(request, monkeypatch) -> Iterator[str]:
    """A bogus token in the environment and IAM (on 127.0.0.1) refusing it with ``status``."""
    handler = type("Refusing", (_FakeIAM,), {"status": request.param})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("QISKIT_IBM_TOKEN", TOKEN)
    monkeypatch.setenv("IAM_URL", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.delenv("QISKIT_IBM_INSTANCE", raising=False)
    monkeypatch.delenv("QISKIT_IBM_CHANNEL", raising=False)
    try:
        yield TOKEN
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture()
def unreachable_iam(monkeypatch) -> str:
    """A token in the environment and IAM at a loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("QISKIT_IBM_TOKEN", TOKEN)
    monkeypatch.setenv("IAM_URL", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("QISKIT_IBM_INSTANCE", raising=False)
    monkeypatch.delenv("QISKIT_IBM_CHANNEL", raising=False)
    return TOKEN


def _chain_text(exc: BaseException | None) -> str:
    texts = []
    while exc is not None and len(texts) < 20:
        texts.append(f"{type(exc).__name__}: {exc}")
        exc = exc.__cause__ or exc.__context__
    return "\n".join(texts)


def test_a_refused_token_is_reported_as_refused_and_never_shown(refusing_iam, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(BackendConfigError) as info:
        get_backend("ibm:ibm_brisbane")
    message = str(info.value)
    assert message.startswith("IBM Quantum refused the API token in QISKIT_IBM_TOKEN"), message
    assert "not configured" not in message and "\n" not in message
    chain = _chain_text(info.value)
    assert refusing_iam not in chain and chain.count("\n") == 0  # nothing chained that could carry it
    captured = capsys.readouterr()
    assert refusing_iam not in caplog.text + captured.out + captured.err


def test_an_unreachable_ibm_is_reported_as_a_network_problem(unreachable_iam, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(BackendConfigError) as info:
        get_backend("ibm:ibm_brisbane")
    message = str(info.value)
    assert message.startswith("IBM Quantum could not be reached"), message
    assert "proxy" in message and "not configured" not in message and "refused the API token" not in message
    captured = capsys.readouterr()
    assert unreachable_iam not in _chain_text(info.value) + caplog.text + captured.out + captured.err


def test_backends_list_tells_a_refused_token_apart(refusing_iam):
    from finetune.quantum.cli import app

    result = CliRunner().invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1].startswith("IBM Quantum refused the API token in QISKIT_IBM_TOKEN")
    assert refusing_iam not in result.output


def test_backends_list_tells_no_connection_apart(unreachable_iam):
    from finetune.quantum.cli import app

    result = CliRunner().invoke(app, ["list", "--json"])
    assert result.exit_code == 0, result.output
    note = json.loads(result.output)["ibm_note"]
    assert note.startswith("IBM Quantum could not be reached") and unreachable_iam not in result.output


@pytest.fixture()
def account_json(tmp_path, monkeypatch) -> Path:
    """The account file of a temporary HOME, no IBM settings in the environment, and IAM at a closed
    loopback port (nothing could reach the network even if a check let the settings through)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("IAM_URL", f"http://127.0.0.1:{port}")
    for name in ("QISKIT_IBM_TOKEN", "QISKIT_IBM_INSTANCE", "QISKIT_IBM_CHANNEL"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / ".qiskit").mkdir()
    return tmp_path / ".qiskit" / "qiskit-ibm.json"


def _saved_account(instance: str) -> str:
    return json.dumps({"default-ibm-quantum-platform": {
        "channel": "ibm_quantum_platform", "token": TOKEN, "instance": instance, "is_default_account": True}})


def test_a_saved_account_file_that_is_not_json_is_named(account_json):
    account_json.write_text('{"default-ibm-quantum-platform": {"token": "x",\n')
    with pytest.raises(BackendConfigError) as info:
        get_backend("ibm:ibm_brisbane")
    message = str(info.value)
    assert f"{account_json} is not valid JSON" in message and "line 2, column 1" in message, message
    assert "save_account" in message and "try again later" not in message and "\n" not in message


@pytest.mark.parametrize("where", ["file", "env"])
def test_a_malformed_instance_crn_is_named_before_anything_is_sent(account_json, monkeypatch, where):
    if where == "file":
        account_json.write_text(_saved_account("crn:v1:bluemix:public:quantum-computing:us-east:a/123"))
    else:
        monkeypatch.setenv("QISKIT_IBM_TOKEN", TOKEN)
        monkeypatch.setenv("QISKIT_IBM_INSTANCE", "crn:bogus")
    with pytest.raises(BackendConfigError) as info:
        get_backend("ibm:ibm_brisbane")
    message = str(info.value)
    assert "is not a valid CRN: expected crn:v1:bluemix:public:quantum-computing:<region>" in message, message
    assert (str(account_json) if where == "file" else "QISKIT_IBM_INSTANCE") in message
    assert "could not be reached" not in message and TOKEN not in message


def test_well_formed_crns_and_instance_names_pass_the_offline_check(account_json):
    from finetune.quantum.ibm_errors import account_settings_problem

    crn = "crn:v1:bluemix:public:quantum-computing:us-east:a/b947c1c5a9378d64aed96696e4d76e8e:a3a7f181-35aa-42c8::"
    for instance in (crn, "my-instance"):
        account_json.write_text(_saved_account(instance))
        assert account_settings_problem(account_json) is None
