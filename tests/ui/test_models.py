import pytest

from ui.models import display_circuit, loaded_checkpoints, metric_rows, model_card


@pytest.fixture(scope="module")
def shipped():
    return loaded_checkpoints(None)  # no assistant: the shipped checkpoints from disk


def _saved_metrics(model_dir) -> dict:
    import json
    from pathlib import Path

    return json.loads((Path(model_dir) / "metrics.json").read_text())


def test_metrics_json_is_flattened_into_rows():
    rows = metric_rows({"val_macro_f1": 0.93904, "history": [{}, {}], "val_oos": {"oos_recall": 0.96}, "best_epoch": 4,
                        "val_entity_f1": None})
    assert rows == [["val_macro_f1", 0.939], ["history (entries)", 2], ["val_oos.oos_recall", 0.96], ["best_epoch", 4]]


@pytest.mark.slow  # loads the shipped checkpoints and draws circuits
def test_shipped_models_are_described_with_metrics_backend_and_circuit(shipped):
    assert list(shipped) == ["Intents", "Entities", "Sentiment"]
    card = model_card("Sentiment", shipped["Sentiment"])
    assert "`hybrid`" in card.summary and "**backend in use:** `exact`" in card.summary
    assert ["val_macro_f1", round(_saved_metrics(card.path)["val_macro_f1"], 4)] in card.metrics
    width, height = card.circuit.size
    assert width > 2 * height > 200  # a drawn 6-qubit circuit, wider than tall
    assert "6 qubits" in card.circuit_note and "drawn as one box" in card.circuit_note


@pytest.mark.slow  # loads the shipped checkpoints and draws circuits
def test_a_classical_head_says_it_has_no_circuit(shipped):
    card = model_card("Entities", shipped["Entities"])
    assert card.circuit is None
    assert card.circuit_note == "The linear head of this model has no quantum circuit."
    saved = _saved_metrics(card.path)
    assert ["best_epoch", saved["best_epoch"]] in card.metrics and ["head_parameters", saved["head_parameters"]] in card.metrics


@pytest.mark.slow  # loads the shipped checkpoints and draws circuits
def test_drawn_circuit_keeps_every_trained_gate_and_boxes_the_input_loading(shipped):
    ansatz = shipped["Intents"].head.quantum.ansatz
    shown = display_circuit(ansatz)
    assert shown.data[0].operation.name == "amplitude_encoding"
    assert len(shown.data) == len(ansatz.circuit.data) - ansatz.n_prep_instructions + 1
    assert set(shown.parameters) == set(ansatz.weights)  # every weight of the head is in the picture


@pytest.mark.slow  # loads the shipped checkpoints and draws circuits
def test_the_assistants_loaded_models_are_the_ones_shown(shipped):
    class Loaded:  # what agent.nlu.NLU holds: models with a .checkpoint
        def __init__(self, checkpoint):
            self.checkpoint = checkpoint

    class WithNLU:
        nlu = type("NLU", (), {"intents": Loaded(shipped["Intents"]), "entities": None, "sentiment": Loaded(shipped["Sentiment"])})()

    found = loaded_checkpoints(WithNLU())
    assert list(found) == ["Intents", "Sentiment"]
    assert found["Intents"] is shipped["Intents"]
