"""What every quantum backend shares: the spec string that names one, the protocol it answers,
and the device-side helpers (fake IBM devices, transpiling a circuit for one, checking values).

:mod:`finetune.quantum.backends` builds a backend from a spec; the backends themselves
(:mod:`finetune.quantum.aer`, :mod:`finetune.quantum.ibm`) build on this module, never on the factory.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from qiskit import QuantumCircuit
    from qiskit.providers import BackendV2
    from qiskit.quantum_info import SparsePauliOp

    from finetune.quantum.ansatz import Ansatz

KINDS = ("exact", "aer", "ibm")
DEFAULT_IBM_SHOTS = 4096
# Non-zero on purpose: qiskit-ibm-runtime's local mode drops a falsy ``seed_simulator``.
DEFAULT_SEED = 1234
# Level 1 maps and routes the circuit onto the device; higher levels cannot merge our
# parameterised rotations anyway, and cost more transpile time per ansatz.
OPTIMIZATION_LEVEL = 1
SPEC_HELP = (
    "valid backends: exact | aer[:shots=N][,noise=fake_<device>][,seed=N][,readout=m3][,zne=1,3,5][,zne_fit=linear|richardson] | "
    "ibm:<device>[,shots=N][,seed=N][,resilience=0|1|2][,twirling=on|off][,dd=XY4|XX|XpXm|off] "
    "(ibm:fake_<device> runs offline); `agent backends list` shows the devices"
)
# Error mitigation of IBM Runtime's EstimatorV2 (``ibm`` only). Unset keys keep the service's
# defaults; they are named here so a spec records what was asked for.
RESILIENCE_LEVELS = (0, 1, 2)
TWIRLING = {"on": True, "off": False}
DD_SEQUENCES = ("XY4", "XX", "XpXm")
DD_CHOICES = (*DD_SEQUENCES, "off")
# Error mitigation on Aer with a noise model (``aer`` only; :mod:`finetune.quantum.mitigation`):
# readout errors corrected with mthree's M3, and zero-noise extrapolation over gate-folded circuits.
READOUT_CHOICES = ("m3", "off")
ZNE_FITS = ("linear", "richardson")
MAX_ZNE_SCALE = 9  # a circuit folded 9x is already deep enough for noise to wash it out


class BackendConfigError(ValueError):
    """A backend spec that cannot be honoured (bad syntax, unknown device, no credentials)."""


@dataclass(frozen=True)
class BackendSpec:
    """A parsed backend spec.

    Args:
        kind: ``exact``, ``aer`` or ``ibm``.
        shots: Shots per circuit; ``None`` means exact expectation values (``exact``/``aer``).
            ``ibm`` always samples and defaults to :data:`DEFAULT_IBM_SHOTS`.
        noise: Fake IBM device whose noise model Aer uses (``aer`` only).
        device: IBM device name, or ``fake_<name>`` for the offline path (``ibm`` only).
        seed: Seed of the simulators and the transpiler; each job uses ``seed + job index``.
        resilience: EstimatorV2 ``resilience_level`` (0 none, 1 readout mitigation, 2 adds
            zero-noise extrapolation); ``None`` keeps the service default (``ibm`` only).
        twirling: Pauli twirling of gates and measurements (``ibm`` only).
        dd: Dynamical decoupling sequence (``XY4``, ``XX``, ``XpXm``) or ``off`` (``ibm`` only).
        readout: ``m3``: correct readout errors with mthree's M3, calibrated on the noisy
            simulator (``aer`` with noise and shots only); ``off`` or None: no correction.
        zne: Noise scale factors (odd integers, increasing, e.g. ``(1, 3, 5)``) of zero-noise
            extrapolation by global gate folding (``aer`` with noise only).
        zne_fit: How the readouts at those scales are extrapolated to zero noise: ``linear``
            (least squares, the default) or ``richardson`` (the polynomial through every point).
    """

    kind: str
    shots: int | None = None
    noise: str | None = None
    device: str | None = None
    seed: int = DEFAULT_SEED
    resilience: int | None = None
    twirling: bool | None = None
    dd: str | None = None
    readout: str | None = None
    zne: tuple[int, ...] | None = None
    zne_fit: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.zne, list):  # from JSON
            object.__setattr__(self, "zne", tuple(self.zne))
        if self.kind not in KINDS:
            raise BackendConfigError(f"unknown backend kind {self.kind!r}; {SPEC_HELP}")
        if self.shots is not None and (
            isinstance(self.shots, bool) or not isinstance(self.shots, int) or self.shots <= 0
        ):
            raise BackendConfigError(f"shots must be a positive integer, got {self.shots!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise BackendConfigError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.kind == "exact" and (self.shots, self.noise, self.device) != (None, None, None):
            raise BackendConfigError(f"'exact' takes no options; {SPEC_HELP}")
        if self.kind != "aer" and self.noise is not None:
            raise BackendConfigError(f"noise= is an aer option; {SPEC_HELP}")
        if self.kind != "ibm" and self.device is not None:
            raise BackendConfigError(f"a device name is an ibm option; {SPEC_HELP}")
        if self.kind != "ibm" and self.mitigation:
            raise BackendConfigError(f"resilience=, twirling= and dd= are ibm options; {SPEC_HELP}")
        if self.resilience is not None and (
            isinstance(self.resilience, bool) or self.resilience not in RESILIENCE_LEVELS
        ):
            raise BackendConfigError(f"resilience must be one of 0, 1, 2; got {self.resilience!r}")
        if self.twirling is not None and not isinstance(self.twirling, bool):
            raise BackendConfigError(f"twirling must be on or off; got {self.twirling!r}")
        if self.dd is not None and self.dd not in DD_CHOICES:
            raise BackendConfigError(f"dd must be one of {', '.join(DD_CHOICES)}; got {self.dd!r}")
        self._check_aer_mitigation()
        if self.noise is not None:
            check_fake_device(self.noise)
        if self.kind == "ibm":
            if not self.device:
                raise BackendConfigError(f"'ibm' needs a device name; {SPEC_HELP}")
            if self.device.startswith("fake_"):
                check_fake_device(self.device)
            if self.shots is None:
                object.__setattr__(self, "shots", DEFAULT_IBM_SHOTS)

    def _check_aer_mitigation(self) -> None:
        if not self.aer_mitigation:
            return
        if self.kind != "aer":
            raise BackendConfigError(f"readout=, zne= and zne_fit= are aer options; {SPEC_HELP}")
        if self.readout is not None and self.readout not in READOUT_CHOICES:
            raise BackendConfigError(f"readout must be one of {', '.join(READOUT_CHOICES)}; got {self.readout!r}")
        if self.readout == "off":  # the same backend as no readout key, so one spelling of it
            object.__setattr__(self, "readout", None)
        if self.readout == "m3" and (self.noise is None or self.shots is None):
            raise BackendConfigError(
                "readout=m3 corrects measured counts of a noisy device: give noise= and shots=, "
                "e.g. aer:noise=fake_sherbrooke,shots=1024,readout=m3")
        if self.zne is not None:
            scales = self.zne
            if (not isinstance(scales, tuple) or len(scales) < 2
                    or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 or k % 2 == 0 or k > MAX_ZNE_SCALE
                           for k in scales)
                    or list(scales) != sorted(set(scales))):
                raise BackendConfigError(
                    f"zne takes at least two increasing odd scale factors from 1 to {MAX_ZNE_SCALE}, "
                    f"e.g. zne=1,3,5; got {scales!r}")
            if self.noise is None:
                raise BackendConfigError("zne= extrapolates device noise away: give noise=, "
                                         "e.g. aer:noise=fake_sherbrooke,shots=1024,zne=1,3,5")
        if self.zne_fit is not None:
            if self.zne_fit not in ZNE_FITS:
                raise BackendConfigError(f"zne_fit must be one of {', '.join(ZNE_FITS)}; got {self.zne_fit!r}")
            if self.zne is None:
                raise BackendConfigError("zne_fit= needs zne= scale factors, e.g. zne=1,3,5,zne_fit=richardson")

    @property
    def aer_mitigation(self) -> dict[str, Any]:
        """The Aer error-mitigation keys that are set (``readout``, ``zne``, ``zne_fit``)."""
        keys = {"readout": self.readout, "zne": self.zne, "zne_fit": self.zne_fit}
        return {key: value for key, value in keys.items() if value is not None}

    @property
    def mitigation(self) -> dict[str, Any]:
        """The error-mitigation keys that are set, as the spec spells them."""
        keys = {"resilience": self.resilience, "twirling": self.twirling, "dd": self.dd}
        return {key: value for key, value in keys.items() if value is not None}

    def estimator_options(self) -> dict[str, Any]:
        """The EstimatorV2 options this spec asks for (``ibm`` only): shots and mitigation."""
        options: dict[str, Any] = {"default_shots": self.shots}
        if self.resilience is not None:
            options["resilience_level"] = self.resilience
        if self.twirling is not None:
            options["twirling"] = {"enable_gates": self.twirling, "enable_measure": self.twirling}
        if self.dd == "off":
            options["dynamical_decoupling"] = {"enable": False}
        elif self.dd is not None:
            options["dynamical_decoupling"] = {"enable": True, "sequence_type": self.dd}
        return options

    @property
    def offline(self) -> bool:
        """True when nothing leaves this machine (every kind but a real IBM device)."""
        return self.kind != "ibm" or bool(self.device and self.device.startswith("fake_"))

    def __str__(self) -> str:
        options = [self.device] if self.device else []
        if self.noise:
            options.append(f"noise={self.noise}")
        if self.shots is not None and not (self.kind == "ibm" and self.shots == DEFAULT_IBM_SHOTS):
            options.append(f"shots={self.shots}")
        if self.seed != DEFAULT_SEED:
            options.append(f"seed={self.seed}")
        if self.resilience is not None:
            options.append(f"resilience={self.resilience}")
        if self.twirling is not None:
            options.append(f"twirling={'on' if self.twirling else 'off'}")
        if self.dd is not None:
            options.append(f"dd={self.dd}")
        if self.readout is not None:
            options.append(f"readout={self.readout}")
        if self.zne is not None:
            options.append(f"zne={format_scales(self.zne)}")
        if self.zne_fit is not None:
            options.append(f"zne_fit={self.zne_fit}")
        return self.kind + (":" + ",".join(options) if options else "")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BackendSpec:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise BackendConfigError(f"unknown backend settings: {', '.join(sorted(unknown))}")
        return cls(**data)


def parse_backend(spec: str) -> BackendSpec:
    """Parse a spec string such as ``aer:noise=fake_sherbrooke,shots=1024``.

    Raises:
        BackendConfigError: With one line that lists the valid forms.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise BackendConfigError(f"empty backend spec; {SPEC_HELP}")
    kind, _, rest = spec.strip().partition(":")
    kind = kind.strip().lower()
    if kind not in KINDS:
        raise BackendConfigError(f"unknown backend {spec!r}; {SPEC_HELP}")
    items = [item.strip() for item in rest.split(",")] if rest else []
    fields: dict[str, Any] = {"kind": kind}
    if kind == "ibm" and items and "=" not in items[0]:
        fields["device"] = items.pop(0)
    allowed = {"exact": (), "aer": ("shots", "noise", "seed", "readout", "zne", "zne_fit"),
               "ibm": ("shots", "seed", "resilience", "twirling", "dd")}[kind]
    for item in _join_scales(items):
        key, sep, value = (part.strip() for part in item.partition("="))
        if not sep or key not in allowed or not value:
            options = ", ".join(f"{name}=" for name in allowed) or "none"
            raise BackendConfigError(
                f"bad option {item!r} in backend {spec!r} (options of {kind}: {options}); {SPEC_HELP}"
            )
        if key in fields:
            raise BackendConfigError(f"option {key!r} given twice in backend {spec!r}")
        if key in ("shots", "seed"):
            try:
                fields[key] = int(value)
            except ValueError:
                raise BackendConfigError(
                    f"{key} must be a positive integer, got {value!r} in backend {spec!r}"
                ) from None
        elif key == "zne":
            try:
                fields[key] = tuple(int(part) for part in value.split(","))
            except ValueError:
                raise BackendConfigError(
                    f"zne takes odd integer scale factors such as zne=1,3,5, got {value!r} in backend {spec!r}"
                ) from None
        elif key in MITIGATION_VALUES:
            choices = MITIGATION_VALUES[key]
            if value not in choices:
                raise BackendConfigError(
                    f"bad value {value!r} for {key} in backend {spec!r}; allowed: {', '.join(choices)}"
                )
            fields[key] = choices[value]
        else:
            fields[key] = value
    return BackendSpec(**fields)


def format_scales(scales: tuple[int, ...]) -> str:
    """ZNE scale factors as a spec spells them: ``(1, 3, 5)`` → ``1,3,5``."""
    return ",".join(str(scale) for scale in scales)


def _join_scales(items: list[str]) -> list[str]:
    """Options with the scale factors of ``zne=1,3,5`` joined back into one item: the commas
    that separate options also separate the factors, and a bare number can only belong to zne."""
    joined: list[str] = []
    for item in items:
        if joined and "=" not in item and item.lstrip("-").isdigit() and joined[-1].partition("=")[0].strip() == "zne":
            joined[-1] += "," + item
        else:
            joined.append(item)
    return joined


# Spelling in a spec string → value in :class:`BackendSpec`.
MITIGATION_VALUES: dict[str, dict[str, Any]] = {
    "resilience": {str(level): level for level in RESILIENCE_LEVELS},
    "twirling": TWIRLING,
    "dd": {name: name for name in DD_CHOICES},
}


@runtime_checkable
class QuantumBackend(Protocol):
    """Anything that turns an ansatz and parameter values into readouts.

    Attributes:
        name: The canonical spec string of the backend.
        shots: Shots per circuit, or ``None`` for exact expectation values.
        on_job: Called with the id of every job right after it is submitted.
    """

    name: str
    shots: int | None
    on_job: Callable[[str], None] | None

    def expectations(self, ansatz: Ansatz, values: np.ndarray) -> np.ndarray:
        """Readout ``[B, K]`` (float64) of ``ansatz`` at parameter values ``[B, P]``."""
        ...


def check_values(ansatz: Ansatz, values: Any) -> np.ndarray:
    """``values`` as a float64 ``[B, P]`` array, or a ValueError naming the expected shape."""
    array = np.asarray(values, dtype=np.float64)
    n_params = len(ansatz.parameters)
    if array.ndim != 2 or array.shape[1] != n_params:
        raise ValueError(f"values must be [batch, {n_params}], got {list(array.shape)}")
    return array


# --- fake IBM devices ------------------------------------------------------------------------


@lru_cache(maxsize=1)
def fake_devices() -> dict[str, int]:
    """Name → qubit count of every fake device in qiskit-ibm-runtime (built once per process)."""
    from qiskit_ibm_runtime.fake_provider import FakeProviderForBackendV2

    with warnings.catch_warnings():
        # Some fakes (fake_nighthawk, …) warn that their error values are not typical of the
        # real device; that is harmless for simulation and would only be noise to a user.
        warnings.simplefilter("ignore", UserWarning)
        return {backend.name: backend.num_qubits for backend in FakeProviderForBackendV2().backends()}


def check_fake_device(name: str) -> None:
    """Raise :class:`BackendConfigError` (listing the valid names) unless ``name`` is a fake."""
    names = fake_devices()
    if name not in names:
        raise BackendConfigError(f"unknown fake device {name!r}; valid: {', '.join(sorted(names))}")


def fake_device(name: str) -> BackendV2:
    """A fresh fake IBM device by name (``fake_sherbrooke``)."""
    from qiskit_ibm_runtime.fake_provider import FakeProviderForBackendV2

    check_fake_device(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # see fake_devices
        device = FakeProviderForBackendV2().backend(name)
        device.target  # built lazily; build it while the warning filter is on
    return device


# --- circuits compiled for a device ----------------------------------------------------------


@dataclass(frozen=True, eq=False)
class DeviceCircuit:
    """An ansatz transpiled to a device's ISA.

    Attributes:
        circuit: The ISA circuit (device-wide register; Aer truncates the idle qubits).
        columns: For each of ``circuit.parameters`` (Qiskit's sorted order), its column in the
            ansatz's ``values``; ``values[:, columns]`` is what a primitive binds.
        physical: Final physical qubit of each logical qubit (routing may permute them).
        observables: The ansatz observables laid out onto the physical qubits.
        active: Physical qubits any instruction touches.
    """

    circuit: QuantumCircuit
    columns: np.ndarray
    physical: tuple[int, ...]
    observables: tuple[SparsePauliOp, ...]
    active: frozenset[int]


def parameter_columns(ansatz: Ansatz, circuit: QuantumCircuit) -> np.ndarray:
    """Columns of ``values`` in the order a primitive binds ``circuit.parameters``.

    Qiskit sorts circuit parameters by name (``w`` before ``x``), not in the ansatz's
    inputs-then-weights order, so a plain ``values`` array would bind the wrong angles.
    """
    position = {param: i for i, param in enumerate(ansatz.parameters)}
    return np.array([position[param] for param in circuit.parameters], dtype=np.int64)


def compile_for_device(
    ansatz: Ansatz, device: BackendV2, *, seed: int, measure: bool = False
) -> DeviceCircuit:
    """Transpile ``ansatz.circuit`` (plus ``measure_all`` when ``measure``) to ``device``'s ISA."""
    from qiskit.transpiler import generate_preset_pass_manager

    if ansatz.n_qubits > device.num_qubits:
        raise BackendConfigError(
            f"the ansatz has {ansatz.n_qubits} qubits but {device.name} only {device.num_qubits}"
        )
    circuit = ansatz.circuit.measure_all(inplace=False) if measure else ansatz.circuit
    manager = generate_preset_pass_manager(
        optimization_level=OPTIMIZATION_LEVEL, backend=device, seed_transpiler=seed
    )
    isa = manager.run(circuit)
    physical = tuple(isa.layout.final_index_layout()[: ansatz.n_qubits])
    active = frozenset(
        isa.find_bit(qubit).index
        for instruction in isa.data
        if instruction.operation.name != "barrier"
        for qubit in instruction.qubits
    )
    observables = tuple(obs.apply_layout(isa.layout) for obs in ansatz.observables)
    return DeviceCircuit(isa, parameter_columns(ansatz, isa), physical, observables, active)
