import numpy as np
import torch

from eval.noise_corrections import corrections
from finetune.models.heads import Head, HeadConfig
from finetune.quantum.ansatz import AnsatzConfig


def _head() -> Head:
    torch.manual_seed(0)
    head = Head(HeadConfig(kind="hybrid", in_features=8, n_classes=3, n_circuits=2, dropout=0.0,
                           ansatz=AnsatzConfig(n_qubits=2, depth=1, encoding="amplitude", readout="probs")))
    torch.nn.init.normal_(head.quantum_out.weight, std=2.0)
    return head.eval()


def _data(head: Head, noise) -> dict[str, np.ndarray]:
    generator = torch.Generator().manual_seed(1)
    data = {}
    for split, n in (("val", 60), ("test", 40)):
        features = torch.randn(n, 8, generator=generator)
        with torch.no_grad():
            exact = head.quantum(features).numpy()
            labels = head(features).argmax(-1).numpy()  # the exact head is right on every query
        data.update({f"{split}_features": features.numpy(), f"{split}_labels": labels,
                     f"{split}_exact": exact, f"{split}_noisy": noise(exact).astype(np.float32)})
    return data


def test_an_affine_distortion_is_undone_by_the_affine_corrections():
    head = _head()
    results = corrections(head, _data(head, lambda exact: 0.3 * exact + 0.7), n_val=60)
    assert results["affine per circuit"]["test"] == 1.0
    assert results["depolarising inverse"]["test"] == 1.0
    assert results["none"]["test"] < 1.0  # the distortion did flip queries
    assert set(results) == {"none", "affine per circuit", "affine per output", "depolarising inverse",
                            "branch weight", "linear path only"}


def test_no_noise_leaves_every_correction_right_and_the_branch_weight_near_one():
    head = _head()
    results = corrections(head, _data(head, lambda exact: exact), n_val=60)
    assert results["none"]["test"] == 1.0
    assert results["affine per output"]["test"] == 1.0
    assert results["branch weight"]["beta"] > 0.5
