import pytest
import torch

from finetune.models.heads import HEAD_KINDS, Head, HeadConfig, count_parameters, matched_mlp
from finetune.quantum.ansatz import AnsatzConfig

SMALL = AnsatzConfig(n_qubits=3, depth=1, encoding="amplitude", readout="probs")


@pytest.mark.parametrize("kind", HEAD_KINDS)
def test_every_kind_maps_features_to_logits_and_trains(kind):
    torch.manual_seed(0)
    head = Head(HeadConfig(kind=kind, in_features=16, n_classes=5, ansatz=SMALL, n_circuits=2))
    features = torch.randn(8, 16)
    logits = head(features)
    assert logits.shape == (8, 5)
    logits.sum().backward()
    assert all(p.grad is not None for p in head.parameters() if p.requires_grad)


@pytest.mark.parametrize("kind", ["quantum", "hybrid"])
def test_token_features_fold_into_the_batch(kind):
    head = Head(HeadConfig(kind=kind, in_features=16, n_classes=4, ansatz=SMALL, n_circuits=2)).eval()
    tokens = torch.randn(2, 7, 16)
    assert torch.allclose(head(tokens).reshape(14, 4), head(tokens.reshape(14, 16)), atol=1e-6)


@pytest.mark.parametrize("kind", HEAD_KINDS)
def test_reordered_classes_move_the_logit_columns_with_them(kind):
    torch.manual_seed(0)
    head = Head(HeadConfig(kind=kind, in_features=16, n_classes=4, ansatz=SMALL, n_circuits=2, dropout=0.0)).eval()
    with torch.no_grad():
        for parameter in head.parameters():  # the hybrid's circuit branch starts at zero
            parameter.add_(0.1 * torch.randn_like(parameter))
    x = torch.randn(5, 16)
    before = head(x)
    head.reorder_classes([2, 0, 3, 1])
    assert torch.allclose(head(x), before[:, [2, 0, 3, 1]], atol=1e-6)
    with pytest.raises(ValueError, match="each of the 4 classes once"):
        head.reorder_classes([0, 0, 1, 2])


def test_hybrid_starts_as_its_linear_path():
    torch.manual_seed(0)
    hybrid = Head(HeadConfig(kind="hybrid", in_features=16, n_classes=3, ansatz=SMALL, dropout=0.0)).eval()
    x = torch.randn(5, 16)
    assert torch.allclose(hybrid(x), hybrid.linear(x))


def test_quantum_branch_gets_gradients_through_the_circuit():
    head = Head(HeadConfig(kind="quantum", in_features=16, n_classes=3, ansatz=SMALL, n_circuits=2))
    head(torch.randn(4, 16)).sum().backward()
    assert head.quantum.weights.grad.abs().sum() > 0
    assert head.quantum.project.weight.grad.abs().sum() > 0


def test_exact_amplitude_heads_share_each_circuit_across_the_batch_with_the_same_numbers(monkeypatch):
    torch.manual_seed(0)
    head = Head(HeadConfig(kind="quantum", in_features=16, n_classes=3, n_circuits=2, dropout=0.0,
                           ansatz=AnsatzConfig(n_qubits=4, depth=2, encoding="amplitude", readout="probs")))
    branch = head.quantum
    calls = []
    monkeypatch.setattr(type(branch.circuit), "forward",
                        lambda self, values: calls.append(values) or pytest.fail("ran row by row"))
    x = torch.randn(6, 16)
    shared = branch(x)  # never reaches the row-by-row forward
    monkeypatch.undo()
    row_by_row = branch.scale * branch.circuit(branch.circuit_values(x)).reshape(6, -1)
    assert not calls
    assert torch.allclose(shared, row_by_row, atol=1e-4)


@pytest.mark.parametrize("encoding", ["angle", "amplitude"])
def test_circuit_weights_are_per_circuit(encoding):
    config = HeadConfig(kind="quantum", in_features=8, n_classes=2, n_circuits=3,
                        ansatz=AnsatzConfig(n_qubits=2, depth=1, encoding=encoding, readout="z"))
    head = Head(config)
    assert head.quantum.weights.shape == (3, config.ansatz.n_weights)
    assert head.quantum.out_features == 3 * 2


def test_matched_mlp_has_about_the_same_parameter_count():
    config = HeadConfig(kind="quantum", in_features=384, n_classes=77)
    mlp = matched_mlp(config)
    quantum, classical = count_parameters(Head(config)), count_parameters(Head(mlp))
    assert mlp.kind == "mlp"
    assert abs(quantum - classical) / quantum < 0.01


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"kind": "qsvm"}, "head kind must be one of"),
        ({"n_classes": 1}, "at least 2 classes"),
        ({"in_features": 0}, "in_features must be a positive integer"),
        ({"dropout": 1.0}, "dropout must be in"),
    ],
)
def test_config_validates(changes, message):
    with pytest.raises(ValueError, match=message):
        HeadConfig(**changes)


def test_config_round_trips_through_a_dict():
    config = HeadConfig(kind="quantum", n_classes=7, ansatz=SMALL)
    again = HeadConfig.from_dict(config.to_dict())
    assert again == config
    assert isinstance(again.ansatz, AnsatzConfig)
    with pytest.raises(ValueError, match="unknown head settings: colour"):
        HeadConfig.from_dict({**config.to_dict(), "colour": "red"})
