"""The ``ibm`` backend: IBM Runtime ``EstimatorV2`` in ``Batch`` mode.

``ibm:<device>`` connects to IBM Quantum with the account qiskit-ibm-runtime already knows
(``QiskitRuntimeService.save_account(...)``, or the ``QISKIT_IBM_TOKEN`` / ``QISKIT_IBM_INSTANCE``
/ ``QISKIT_IBM_CHANNEL`` environment variables). ``ibm:fake_<device>`` runs exactly the same class
on a fake device: qiskit-ibm-runtime's local testing mode accepts a fake backend wherever a real
one goes and simulates it with Aer and the device's noise model, so the real-device path is
exercised offline.

The connection is made when the backend is built, so missing credentials fail at once rather
than after a training run, with one line that tells apart no account, a token IBM refused and no
connection (:mod:`finetune.quantum.ibm_errors`). The token is never printed or logged: error
messages from the service are shown with the token value masked, and nothing is chained to them.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from finetune.quantum.device import (
    BackendConfigError,
    BackendSpec,
    DeviceCircuit,
    check_values,
    compile_for_device,
    fake_device,
)
from finetune.quantum.ibm_errors import (
    IBMFailure,
    account_file,
    account_settings_problem,
    classify_ibm_error,
    ibm_error_message,
    redact,
)
from finetune.quantum.jobs import JobStore, RuntimeJobStore, job_key, run_job

if TYPE_CHECKING:
    from qiskit.providers import BackendV2

    from finetune.quantum.ansatz import Ansatz

class IBMRuntimeBackend:
    """Runtime ``EstimatorV2`` on an IBM device (real, or fake in local testing mode).

    Args:
        device: The device: an ``IBMBackend`` from the service, or a fake backend.
        shots: Shots per circuit (the estimator's ``default_shots``).
        seed: Transpiler seed; on a fake device also the simulator seed (``seed + job index``).
        name: The spec string this backend reports.
        job_store: Submits jobs and fetches them by id (default: IBM Runtime itself); jobs are
            recorded in the active run's ledger, see :mod:`finetune.quantum.jobs`.
        options: More EstimatorV2 options (error mitigation: ``resilience_level``, ``twirling``,
            ``dynamical_decoupling``), see :meth:`~finetune.quantum.device.BackendSpec.estimator_options`.
    """

    def __init__(
        self,
        device: BackendV2,
        *,
        shots: int,
        seed: int,
        name: str,
        job_store: JobStore | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.device = device
        self.shots = shots
        self.options = {**(options or {}), "default_shots": shots}
        self.seed = seed
        self.name = name
        self.on_job: Callable[[str], None] | None = None
        self.simulated = device.name.startswith("fake_")
        # A real device's service also finds the jobs of earlier processes (a resumed run's).
        service = None if self.simulated else getattr(device, "service", None)
        self.jobs: JobStore = job_store if job_store is not None else RuntimeJobStore(service)
        self._compiled: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._batch: Any = None
        self._estimator: Any = None
        self._jobs = 0

    @classmethod
    def from_spec(cls, spec: BackendSpec, service: Any | None = None) -> IBMRuntimeBackend:
        """Build from an ``ibm`` spec; a real device is looked up through ``service`` now.

        Raises:
            BackendConfigError: No IBM account, an unknown device, or a failed connection.
        """
        if spec.kind != "ibm" or spec.device is None or spec.shots is None:
            raise ValueError(f"IBMRuntimeBackend needs an ibm spec, got {spec}")
        if spec.offline:
            device = fake_device(spec.device)
        else:
            device = connect_device(spec.device, service)
        return cls(device, shots=spec.shots, seed=spec.seed, name=str(spec), options=spec.estimator_options())

    def compiled(self, ansatz: Ansatz) -> DeviceCircuit:
        """``ansatz`` transpiled to the device's ISA (once per ansatz)."""
        if ansatz not in self._compiled:
            self._compiled[ansatz] = compile_for_device(ansatz, self.device, seed=self.seed)
        return self._compiled[ansatz]

    def expectations(self, ansatz: Ansatz, values: np.ndarray) -> np.ndarray:
        values = check_values(ansatz, values)
        if values.shape[0] == 0:
            return np.zeros((0, ansatz.n_outputs))
        compiled = self.compiled(ansatz)
        estimator = self._get_estimator()
        index = self._jobs
        if self.simulated:
            estimator.options.simulator.seed_simulator = self.seed + index
        self._jobs += 1
        # Observables [1, K] against values [B, 1, P]: the whole batch is one pub, one job.
        bound = values[:, compiled.columns][:, None, :]
        pub = (compiled.circuit, [list(compiled.observables)], bound)
        key = job_key(self.name, index, compiled.circuit, compiled.observables, bound)
        result = run_job(self.jobs, estimator, [pub], key=key, backend=self.name, on_job=self.on_job)
        return ansatz.postprocess(result[0].data.evs)

    def _get_estimator(self):
        from qiskit_ibm_runtime import Batch, EstimatorV2

        if self._estimator is None:
            # Batch, not Session: the jobs of a training run do not depend on each other's
            # queue position, and batch mode lets the service run them back to back.
            self._batch = Batch(backend=self.device)
            # Options the spec leaves out stay Unset: the service applies its own defaults.
            self._estimator = EstimatorV2(mode=self._batch, options=self.options)
        return self._estimator

    def close(self) -> None:
        """Close the runtime batch (no new jobs are accepted; running ones finish)."""
        if self._batch is not None:
            self._batch.close()
            self._batch = self._estimator = None

    def __enter__(self) -> IBMRuntimeBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def connect_device(name: str, service: Any | None = None) -> BackendV2:
    """Look up a real IBM device, with one clear line (and no token) when that fails."""
    service = service if service is not None else open_service()
    try:
        return service.backend(name)
    except Exception as exc:
        if classify_ibm_error(exc) in (IBMFailure.REFUSED, IBMFailure.UNREACHABLE):
            message = ibm_error_message(exc)
        else:
            message = (f"IBM device {name!r} is not available to this account "
                       f"({type(exc).__name__}: {redact(str(exc))}); `agent backends list` shows the devices")
    # Raised outside the handler, and `from None`: nothing chained can carry the token into a
    # traceback or a log.
    raise BackendConfigError(message) from None


def open_service() -> Any:
    """``QiskitRuntimeService()`` from the saved account or the environment.

    Raises:
        BackendConfigError: One line telling apart no account, settings that cannot work (an account
            file that is not JSON, a malformed instance CRN), a refused token and no connection (see
            :mod:`finetune.quantum.ibm_errors`); never the token.
    """
    from qiskit_ibm_runtime import QiskitRuntimeService

    path = account_file()
    problem = account_settings_problem(path)  # offline: a broken file or CRN is named, not sent to IBM
    if problem is not None:
        raise BackendConfigError(problem)
    try:
        # Without a saved file the library reads its environment variables as it always did.
        return QiskitRuntimeService(filename=str(path)) if path.is_file() else QiskitRuntimeService()
    except Exception as exc:  # the library wraps network and token failures alike
        message = ibm_error_message(exc)
    raise BackendConfigError(message) from None


def list_ibm_devices(service: Any | None = None) -> list[dict[str, Any]]:
    """Devices the configured IBM account can use: name and qubit count.

    Raises:
        BackendConfigError: Not configured, the token refused, or the service cannot be reached.
    """
    service = service if service is not None else open_service()
    try:
        devices = service.backends()
    except Exception as exc:
        message = ibm_error_message(exc)
    else:
        return [{"name": device.name, "qubits": device.num_qubits} for device in devices]
    raise BackendConfigError(message) from None
