"""Why IBM Quantum could not be used, as one line that says what to do (never with the token).

qiskit-ibm-runtime reports very different failures with the same exception: ``QiskitRuntimeService()``
raises ``InvalidAccountError("Unable to retrieve instances. Please check that you are using a
valid API token.")`` for *any* failure of IBM Cloud's instance search (0.51), a token refused by IAM
(``ibm_cloud_sdk_core.ApiException`` 400/401/403) and a network failure (``requests``
``ConnectionError``, DNS, timeout) alike, with the real cause chained below it. Later calls wrap
HTTP failures in ``IBMNotAuthorizedError`` (401) or ``RequestsApiError`` (``status_code``, -1 when
no answer came). :func:`classify_ibm_error` walks the chain to the cause.

Settings that cannot work are found before anything is sent (:func:`account_settings_problem`):
the library reports a saved account file that is not JSON as a bare ``JSONDecodeError``, and
sends a malformed instance CRN to IBM, whose answer says nothing about the CRN.
"""

from __future__ import annotations

import json
import os
import re
import socket
from enum import Enum
from pathlib import Path

# IAM answers 400 (BXNIM0415E "Provided API key could not be found", BXNIM0408E expired) for a bad
# key; the runtime API answers 401/403 for a token it does not accept.
REFUSED_STATUSES = (400, 401, 403)
# API keys are long runs of letters, digits, '-' and '_': masked even when they are not the
# environment's token (a saved account's key), at the cost of masking other long identifiers.
_KEY_LIKE = re.compile(r"[A-Za-z0-9_\-]{32,}")
_MAX_CHAIN = 20
# crn:v1:<cname>:<ctype>:quantum-computing:<region>:a/<account id>:<instance id>:: (IBM Cloud's ten fields).
_CRN = re.compile(r"crn:v1:[^:]+:[^:]+:quantum-computing:[^:]*:a/[^:]+:[^:]+::")
CRN_FORM = "crn:v1:bluemix:public:quantum-computing:<region>:a/<account id>:<instance id>::"
_SAVE_AGAIN = "QiskitRuntimeService.save_account(token=..., instance=..., overwrite=True)"


class IBMFailure(Enum):
    """What went wrong when talking to IBM Quantum."""

    NO_ACCOUNT = "no_account"  # no saved account, no QISKIT_IBM_TOKEN (or unusable saved settings)
    REFUSED = "refused"  # IBM answered and did not accept the token
    UNREACHABLE = "unreachable"  # no answer: DNS, connection refused, proxy, timeout
    OTHER = "other"  # IBM answered with another error (maintenance, unknown instance, ...)


def classify_ibm_error(exc: BaseException) -> IBMFailure:
    """Which :class:`IBMFailure` ``exc`` (and the exceptions chained below it) stands for."""
    from qiskit_ibm_runtime.accounts import AccountNotFoundError, InvalidAccountError

    chain = _chain(exc)
    # The deepest cause decides: the library's outer exception names a guess ("valid API token").
    for cause in reversed(chain):
        if _is_network_failure(cause):
            return IBMFailure.UNREACHABLE
        status = _http_status(cause)
        if status is not None:
            return IBMFailure.REFUSED if status in REFUSED_STATUSES else IBMFailure.OTHER
    if any(isinstance(cause, AccountNotFoundError) for cause in chain):
        return IBMFailure.NO_ACCOUNT
    if isinstance(exc, InvalidAccountError) and len(chain) == 1:
        return IBMFailure.NO_ACCOUNT  # saved or environment settings malformed, nothing was sent
    return IBMFailure.OTHER


def ibm_error_message(exc: BaseException) -> str:
    """The one line shown for ``exc``: what happened and how to fix it, the token never included."""
    failure = classify_ibm_error(exc)
    env_token = bool(os.environ.get("QISKIT_IBM_TOKEN"))
    if failure is IBMFailure.NO_ACCOUNT:
        detail = "" if _is_not_found(exc) else f" (the account settings are not valid: {redact(str(exc))})"
        return (
            f"IBM Quantum is not configured{detail}: run QiskitRuntimeService.save_account(token=..., "
            "instance=...) once, or set QISKIT_IBM_TOKEN and QISKIT_IBM_INSTANCE (optional QISKIT_IBM_CHANNEL); "
            "ibm:fake_<device> runs offline"
        )
    if failure is IBMFailure.REFUSED:
        status = next((s for s in map(_http_status, reversed(_chain(exc))) if s is not None), None)
        where = "in QISKIT_IBM_TOKEN" if env_token else "of the saved account"
        fix = ("set QISKIT_IBM_TOKEN to a valid key" if env_token else
               "save a valid key with QiskitRuntimeService.save_account(token=..., instance=..., overwrite=True)")
        return (
            f"IBM Quantum refused the API token {where} (HTTP {status}: invalid, expired or revoked): "
            f"create a new API key on quantum.cloud.ibm.com and {fix}"
        )
    if failure is IBMFailure.UNREACHABLE:
        return (
            f"IBM Quantum could not be reached ({_network_reason(exc)}): check the network connection and "
            "any proxy (HTTPS_PROXY, or proxies= in the saved account); ibm:fake_<device> runs offline"
        )
    return (
        f"IBM Quantum answered with an error ({type(exc).__name__}: {redact(str(exc))}); try again later, "
        "or check the account saved with QiskitRuntimeService.save_account or QISKIT_IBM_TOKEN"
    )


def account_file() -> Path:
    """Where qiskit-ibm-runtime saves accounts: ``~/.qiskit/qiskit-ibm.json`` (read at call time)."""
    return Path.home() / ".qiskit" / "qiskit-ibm.json"


def account_settings_problem(path: Path | None = None) -> str | None:
    """What is wrong with the IBM account settings, found offline, as one line with the fix; None
    when nothing is (no account at all is left to the library, which says so itself).

    Checks that the saved account file ``path`` (default :func:`account_file`) is a JSON object of
    accounts, and that the instance the library would use (``QISKIT_IBM_INSTANCE`` or the saved
    account's), when written as a CRN, has the CRN's form. An instance *name* is not checked.
    """
    path = path if path is not None else account_file()
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            return (f"the saved IBM Quantum account file {path} is not valid JSON ({exc.msg} at line {exc.lineno}, "
                    f"column {exc.colno}): fix it, or delete it and run {_SAVE_AGAIN}")
        except (OSError, UnicodeDecodeError) as exc:
            return f"the saved IBM Quantum account file {path} cannot be read ({exc}): fix it or delete it"
        if not isinstance(data, dict) or not all(isinstance(account, dict) for account in data.values()):
            return (f"the saved IBM Quantum account file {path} is not a JSON object of named accounts: "
                    f"delete it and run {_SAVE_AGAIN}")
    instance, where = _instance_in_use(path)
    if instance and instance.startswith("crn:") and not _CRN.fullmatch(instance):
        return (f"the IBM Quantum instance {redact(instance)!r} ({where}) is not a valid CRN: expected {CRN_FORM}, "
                "as copied from the instance's page on quantum.cloud.ibm.com (or give the instance's name)")
    return None


def _instance_in_use(path: Path) -> tuple[str | None, str]:
    """The instance qiskit-ibm-runtime would use, and where it is set (nothing is sent anywhere)."""
    from qiskit_ibm_runtime.accounts import AccountManager

    try:
        account = AccountManager.get(filename=str(path))
    except Exception:  # noqa: BLE001 - no or unusable account: QiskitRuntimeService says which
        return None, ""
    instance = getattr(account, "instance", None)
    if not isinstance(instance, str):
        return None, ""
    from_env = os.environ.get("QISKIT_IBM_TOKEN") and os.environ.get("QISKIT_IBM_INSTANCE") == instance
    return instance, "set in QISKIT_IBM_INSTANCE" if from_env else f"saved in {path}"


def redact(text: str) -> str:
    """``text`` on one line with the IBM token (from the environment) and key-like strings masked."""
    token = os.environ.get("QISKIT_IBM_TOKEN")
    if token:
        text = text.replace(token, "***")
    return _KEY_LIKE.sub("***", " ".join(text.split()))


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it was raised from, outermost first (bounded: chains can loop)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < _MAX_CHAIN and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _is_network_failure(exc: BaseException) -> bool:
    import requests

    if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
        return True  # DNS, refused connection, proxy and TLS failures, connect and read timeouts
    return isinstance(exc, (ConnectionError, TimeoutError, socket.gaierror))


def _http_status(exc: BaseException) -> int | None:
    """The HTTP status IBM answered with, or None (no answer, or not an HTTP error)."""
    from qiskit_ibm_runtime.exceptions import IBMNotAuthorizedError

    if isinstance(exc, IBMNotAuthorizedError):
        return 401
    module = type(exc).__module__.split(".")[0]
    if module not in ("ibm_cloud_sdk_core", "qiskit_ibm_runtime", "requests"):
        return None
    # ApiException and RequestsApiError carry ``status_code`` (-1: no answer); requests' HTTPError
    # its response. (Not ApiException.code: deprecated, it warns.)
    status = getattr(exc, "status_code", None)
    if status is None and getattr(exc, "response", None) is not None:
        status = getattr(exc.response, "status_code", None)
    return status if isinstance(status, int) and status > 0 else None


def _is_not_found(exc: BaseException) -> bool:
    from qiskit_ibm_runtime.accounts import AccountNotFoundError

    return any(isinstance(cause, AccountNotFoundError) for cause in _chain(exc))


def _network_reason(exc: BaseException) -> str:
    """A short cause: the name lookup failed, the connection was refused, or it timed out."""
    import requests

    chain = _chain(exc)
    if any(isinstance(c, socket.gaierror) or type(c).__name__ == "NameResolutionError" for c in chain):
        return "the server name could not be resolved"
    if any(isinstance(c, requests.exceptions.ProxyError) for c in chain):
        return "the proxy could not be used"
    if any(isinstance(c, (TimeoutError, requests.exceptions.Timeout)) for c in chain):
        return "the connection timed out"
    if any(isinstance(c, ConnectionRefusedError) for c in chain):
        return "the connection was refused"
    if any(isinstance(c, requests.exceptions.SSLError) for c in chain):
        return "the TLS handshake failed"
    return "no connection"
