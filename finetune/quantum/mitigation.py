"""Error mitigation for Aer with a device noise model: what mitigation buys, seen on a laptop.

Two techniques, named by the ``aer`` spec keys ``readout=m3`` and ``zne=1,3,5[,zne_fit=…]``:

- **Readout mitigation** with mthree's M3 (:class:`ReadoutMitigator`): the measurement errors of
  the circuit's physical qubits are calibrated by running M3's calibration circuits on the same
  noisy simulator (the device's readout errors, never read from the noise model directly), and
  every row's measured counts are corrected by M3's matrix-free solve into a quasi-probability
  distribution. Extra cost: the calibration circuits, once per set of physical qubits.
- **Zero-noise extrapolation** (:func:`fold_global`, :func:`extrapolate`): the ISA circuit ``U``
  is run at noise scale ``λ`` as ``U (U† U)^((λ-1)/2)`` (global unitary folding: the same
  logical operation with λ times the gates, hence about λ times the gate noise), and each readout
  is extrapolated to λ = 0 from its values at the scales. Extra cost: one circuit per scale per
  row, each λ times as deep.

Why not mitiq for ZNE: ``pip install mitiq`` (1.1.0, December 2026) pins numpy below 2.3 and
pulls in cirq; it would downgrade the product's numpy. Folding and the polynomial fit are the same
few lines mitiq runs (``fold_global``, ``LinearFactory``/``RichardsonFactory``); the folded
circuit is translated back to the device's basis gates so the noise model applies to every gate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from qiskit import QuantumCircuit
    from qiskit.providers import BackendV2

# M3's calibration shots per circuit (its own default is min(10_000, max_shots)).
CALIBRATION_SHOTS = 10_000


def fold_global(circuit: QuantumCircuit, scale: int, device: BackendV2) -> QuantumCircuit:
    """``circuit`` folded to noise scale ``scale`` (odd): ``U (U† U)^((scale-1)/2)``, in ``device``'s basis.

    Only the basis translator runs on the folded circuit: an optimising transpiler would cancel
    ``U† U`` and undo the folding. The inverse of ``sx`` (``sxdg``) is not a device gate, so it is
    rewritten into ones the noise model has errors for.
    """
    from qiskit.circuit.equivalence_library import SessionEquivalenceLibrary
    from qiskit.transpiler import PassManager
    from qiskit.transpiler.passes import BasisTranslator

    if scale < 1 or scale % 2 == 0:
        raise ValueError(f"a folding scale must be an odd integer >= 1, got {scale}")
    if scale == 1:
        return circuit.copy()
    folded = circuit.copy()
    inverse = circuit.inverse()
    for _ in range((scale - 1) // 2):
        folded.barrier()
        folded.compose(inverse, inplace=True)
        folded.barrier()
        folded.compose(circuit, inplace=True)
    translated = PassManager([BasisTranslator(SessionEquivalenceLibrary, list(device.target.operation_names), target=device.target)]).run(folded)
    translated._layout = circuit.layout  # the same physical qubits as the unfolded circuit
    return translated


def extrapolate(scales: tuple[int, ...], readouts: np.ndarray, fit: str = "linear") -> np.ndarray:
    """Zero-noise values ``[B, K]`` from readouts ``[S, B, K]`` measured at noise ``scales``.

    ``linear``: the least-squares line through the points, read at 0 (stable under shot noise);
    ``richardson``: the polynomial of degree S-1 through every point (exact for smooth decay,
    but it amplifies shot noise).
    """
    readouts = np.asarray(readouts, dtype=np.float64)
    if readouts.ndim != 3 or readouts.shape[0] != len(scales) or len(scales) < 2:
        raise ValueError(f"need readouts [S, B, K] at S >= 2 scales, got {list(readouts.shape)} for {scales}")
    if fit not in ("linear", "richardson"):
        raise ValueError(f"fit must be linear or richardson, got {fit!r}")
    degree = 1 if fit == "linear" else len(scales) - 1
    _, batch, width = readouts.shape
    coefficients = np.polyfit(np.asarray(scales, dtype=np.float64), readouts.reshape(len(scales), -1), degree)
    return coefficients[-1].reshape(batch, width)  # the constant term: the value at scale 0


@dataclass
class ReadoutMitigator:
    """M3 readout mitigation of a few physical qubits of a noisy simulator.

    Args:
        simulator: The noisy Aer simulator the calibration circuits run on (the device's noise).
        physical: Physical qubit of each logical qubit, in logical order.
        shots: Calibration shots per circuit.
    """

    simulator: Any
    physical: tuple[int, ...]
    shots: int = CALIBRATION_SHOTS
    calibration_circuits: int = 0
    calibration_shots: int = 0

    def __post_init__(self) -> None:
        import mthree

        self._m3 = mthree.M3Mitigation(self.simulator)
        # "independent": two circuits per qubit (all 0, all 1), the method M3 uses on simulators.
        self._m3.cals_from_system(list(self.physical), shots=self.shots, method="independent", async_cal=False)
        self.calibration_circuits = 2 * len(self.physical)
        self.calibration_shots = self.calibration_circuits * self.shots

    def correct(self, frequencies: np.ndarray, shots: int) -> np.ndarray:
        """Mitigated quasi-probabilities ``[B, 2**n]`` from measured outcome frequencies ``[B, 2**n]``
        (index bit i = logical qubit i). They sum to 1 and may be slightly negative."""
        n = len(self.physical)
        counts = np.rint(np.asarray(frequencies) * shots).astype(np.int64)
        rows = [{format(i, f"0{n}b"): int(c) for i, c in enumerate(row) if c} for row in counts]
        quasis = self._m3.apply_correction(rows, list(self.physical))
        out = np.zeros(counts.shape, dtype=np.float64)
        for b, quasi in enumerate(quasis):
            for bits, value in quasi.items():
                out[b, int(bits, 2)] = value
        return out
