"""Flow definitions: which intents start a flow, the slots it collects, what it says and does.

A flows file (JSON or YAML; the shipped one is ``agent/flows/banking.yaml``)::

    default_currency: GBP
    flows:
      unrecognised_payment:
        title: Payment you don't recognise
        intents: [card_payment_not_recognised, transaction_charged_twice]
        advice: null                       # said before the first question (e.g. "freeze your card")
        slots:
          - name: amount
            type: amount                   # amount | date | name
            entities: [amount_of_money]    # the tagger's types that fill it
            question: How much was the payment?
            required: true
            cues: [asked for, withdrew]    # optional: a value written after one of these goes here
            label: amount                  # optional: how the summary names it (default: the name)
        done: I've opened case {case_id} ...   # said after the case is created ({case_id}, {title})

Everything is checked when the file is read; a mistake (an unknown slot type, a missing question,
an intent claimed by two flows) is one line naming the file, the flow and the slot.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.flows.values import SLOT_TYPES

SHIPPED_FLOWS = Path(__file__).resolve().parent / "banking.yaml"
_FLOW_KEYS = {"title", "intents", "advice", "slots", "done"}
_SLOT_KEYS = {"name", "type", "entities", "question", "required", "cues", "label"}


class FlowFileError(ValueError):
    """A flows file that cannot be used (the message names the file and what to fix)."""


@dataclass(frozen=True)
class SlotSpec:
    name: str
    type: str
    question: str
    entities: tuple[str, ...] = ()
    required: bool = True
    cues: tuple[str, ...] = ()
    label: str = ""

    def __post_init__(self) -> None:
        if self.type not in SLOT_TYPES:
            raise ValueError(f"slot {self.name!r} has unknown type {self.type!r}; known: {', '.join(SLOT_TYPES)}")
        if not self.question.strip():
            raise ValueError(f"slot {self.name!r} has no question")

    @property
    def shown_name(self) -> str:
        return self.label or self.name.replace("_", " ")


@dataclass(frozen=True)
class FlowSpec:
    name: str
    title: str
    intents: tuple[str, ...]
    slots: tuple[SlotSpec, ...]
    done: str
    advice: str | None = None

    def __post_init__(self) -> None:
        if not self.intents:
            raise ValueError(f"flow {self.name!r} names no intents that start it")
        if not self.slots:
            raise ValueError(f"flow {self.name!r} collects no slots")
        names = [s.name for s in self.slots]
        if len(set(names)) != len(names):
            raise ValueError(f"flow {self.name!r} names a slot twice: {names}")

    def slot(self, name: str) -> SlotSpec:
        return next(s for s in self.slots if s.name == name)


@dataclass(frozen=True)
class FlowBook:
    """All flows, by the intents that start them."""

    flows: dict[str, FlowSpec] = field(default_factory=dict)
    default_currency: str = "GBP"
    source: str = ""

    def __post_init__(self) -> None:
        owner: dict[str, str] = {}
        for flow in self.flows.values():
            for intent in flow.intents:
                if intent in owner:
                    raise ValueError(f"intent {intent!r} starts both {owner[intent]!r} and {flow.name!r}")
                owner[intent] = flow.name

    def for_intent(self, intent: str | None) -> FlowSpec | None:
        if intent is None:
            return None
        return next((f for f in self.flows.values() if intent in f.intents), None)

    @property
    def intents(self) -> set[str]:
        return {i for f in self.flows.values() for i in f.intents}

    @classmethod
    def load(cls, path: str | Path | None = None) -> FlowBook:
        """Read a flows file (default: the shipped banking flows)."""
        path = Path(path) if path is not None else SHIPPED_FLOWS
        if not path.is_file():
            raise FlowFileError(f"flows file {path} not found (give --flows a JSON or YAML file)")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise FlowFileError(f"{path} is not UTF-8 text (a flows file is JSON or YAML)") from None
        data = _parse(path, text)
        try:
            return cls.from_dict(data, source=str(path))
        except (ValueError, TypeError) as exc:
            raise FlowFileError(f"{path}: {exc}") from None

    @classmethod
    def from_dict(cls, data: Any, source: str = "") -> FlowBook:
        if not isinstance(data, dict) or not isinstance(data.get("flows"), dict) or not data["flows"]:
            raise ValueError("a flows file is a mapping with a non-empty 'flows' mapping (name → flow)")
        currency = data.get("default_currency", "GBP")
        if not isinstance(currency, str) or len(currency) != 3:
            raise ValueError(f"default_currency must be a three-letter code such as GBP, got {currency!r}")
        flows = {}
        for name, body in data["flows"].items():
            if not isinstance(body, dict):
                raise ValueError(f"flow {name!r} must be a mapping")
            unknown = set(body) - _FLOW_KEYS
            if unknown:
                raise ValueError(f"flow {name!r} has unknown keys {sorted(unknown)}; known: {sorted(_FLOW_KEYS)}")
            slots = []
            for i, slot in enumerate(body.get("slots") or (), start=1):
                if not isinstance(slot, dict) or "name" not in slot:
                    raise ValueError(f"flow {name!r}: slot {i} needs a name")
                unknown = set(slot) - _SLOT_KEYS
                if unknown:
                    raise ValueError(f"flow {name!r}, slot {slot['name']!r}: unknown keys {sorted(unknown)}; known: {sorted(_SLOT_KEYS)}")
                if "question" not in slot:
                    raise ValueError(f"flow {name!r}, slot {slot['name']!r}: missing question")
                try:
                    slots.append(SlotSpec(str(slot["name"]), str(slot.get("type", "")), str(slot["question"]),
                                          tuple(_strings(slot.get("entities"))), bool(slot.get("required", True)),
                                          tuple(c.lower() for c in _strings(slot.get("cues"))),
                                          str(slot.get("label") or "")))
                except ValueError as exc:
                    raise ValueError(f"flow {name!r}: {exc}") from None
            if "done" not in body:
                raise ValueError(f"flow {name!r}: missing done (what the customer is told once the case is open)")
            try:
                str(body["done"]).format(case_id=1, title="")
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(f"flow {name!r}: done may only use {{case_id}} and {{title}} ({exc!r})") from None
            flows[str(name)] = FlowSpec(str(name), str(body.get("title") or name.replace("_", " ")),
                                        tuple(_strings(body.get("intents"))), tuple(slots), str(body["done"]),
                                        body.get("advice") or None)
        return cls(flows, currency.upper(), source)


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"expected a list of strings, got {value!r}")
    return value


def _parse(path: Path, text: str) -> Any:
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise FlowFileError(f"{path} is not valid JSON: {exc}") from None
    import yaml

    try:
        return yaml.safe_load(text)  # safe_load: a flows file builds no Python objects
    except yaml.YAMLError as exc:
        raise FlowFileError(f"{path} is not valid YAML: {' '.join(str(exc).split())}") from None
