"""Where an :class:`~finetune.quantum.ansatz.Ansatz` runs: one protocol, three kinds of backend.

Every backend answers the same question, ``expectations(ansatz, values[B, P]) -> readout[B, K]``,
whether by exact torch simulation (``exact``), by Aer (``aer``, optionally with shots and a noise
model taken from a fake IBM device) or by IBM Runtime (``ibm:<device>``; ``ibm:fake_<device>``
runs the same code path offline in qiskit-ibm-runtime's local testing mode).

A backend is named by a short spec string (:mod:`finetune.quantum.device` parses it) so configs and the CLI can pick one::

    exact
    aer                                   exact expectation values (no shots, no noise)
    aer:shots=1024                        sampled
    aer:noise=fake_sherbrooke[,shots=N]   noisy (density matrix when no shots are given)
    aer:noise=fake_sherbrooke,shots=N,readout=m3,zne=1,3,5   with readout mitigation (M3) and ZNE
    ibm:ibm_brisbane[,shots=N]            real device (saved account or QISKIT_IBM_* variables)
    ibm:ibm_brisbane,resilience=1,twirling=on,dd=XY4   with EstimatorV2 error mitigation
    ibm:fake_sherbrooke[,shots=N]         the IBM Runtime path, offline

Every spec also takes ``seed=N``. All rows of a batch go into one primitive unit of work (one
job), and every job id is handed to the backend's ``on_job`` hook right after submission.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from finetune.quantum.device import BackendSpec, QuantumBackend, check_values, parse_backend

if TYPE_CHECKING:
    from finetune.quantum.ansatz import Ansatz


def get_backend(
    spec: str | BackendSpec, *, on_job: Callable[[str], None] | None = None
) -> QuantumBackend:
    """Build the backend a spec names; a real IBM device is connected to here, at once.

    Raises:
        BackendConfigError: Bad spec, unknown device, or IBM credentials missing.
    """
    parsed = parse_backend(spec) if isinstance(spec, str) else spec
    if parsed.kind == "exact":
        backend: QuantumBackend = ExactBackend()
    elif parsed.kind == "aer":
        from finetune.quantum.aer import AerBackend

        backend = AerBackend(parsed)
    else:
        from finetune.quantum.ibm import IBMRuntimeBackend

        backend = IBMRuntimeBackend.from_spec(parsed)
    backend.on_job = on_job
    return backend


class ExactBackend:
    """Exact torch statevector simulation behind the numpy protocol (no jobs, no shots)."""

    name = "exact"
    shots: int | None = None

    def __init__(self) -> None:
        import weakref

        self.on_job: Callable[[str], None] | None = None
        self._modules: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def module(self, ansatz: Ansatz):
        """The (cached) :class:`~finetune.quantum.simulate.ExactBackendModule` of ``ansatz``."""
        import torch

        from finetune.quantum.simulate import ExactBackendModule

        if ansatz not in self._modules:
            # complex128: this backend is the reference the others are checked against.
            self._modules[ansatz] = ExactBackendModule(ansatz, dtype=torch.complex128)
        return self._modules[ansatz]

    def expectations(self, ansatz: Ansatz, values: np.ndarray) -> np.ndarray:
        import torch

        values = check_values(ansatz, values)
        with torch.no_grad():
            return self.module(ansatz)(torch.as_tensor(values)).numpy().astype(np.float64)
