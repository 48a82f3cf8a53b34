"""VGG-16 as a second model family: architecture, weight files, the paper's rules."""

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from sphaera_tables.explain import (
    Gamma,
    VGG16Embedding,
    ZBox,
    bilrp,
    grid_labels,
    load_vgg16_weights,
    pooled_lrp_factors,
    vgg16_composite,
)
from sphaera_tables.explain.vgg import vgg16_features


def test_features_follow_torchvision_indexing():
    features = vgg16_features()
    assert len(features) == 31
    convs = [i for i, m in enumerate(features) if isinstance(m, nn.Conv2d)]
    pools = [i for i, m in enumerate(features) if isinstance(m, nn.MaxPool2d)]
    assert convs == [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    assert pools == [4, 9, 16, 23, 30]
    assert features[28].weight.shape == (512, 512, 3, 3)
    assert sum(p.numel() for p in features.parameters()) == 14_714_688


def test_paper_gamma_schedule():
    rules = vgg16_composite().rules
    assert isinstance(rules["features.0"], ZBox)
    expected = {2: 0.5, 7: 0.5, 10: 0.25, 14: 0.25, 17: 0.1, 21: 0.1, 24: 0.0, 28: 0.0}
    for index, gamma in expected.items():
        assert rules[f"features.{index}"] == Gamma(gamma)
    assert set(rules) == {f"features.{i}" for i in (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)}


def test_cut_and_projection_shapes():
    model = VGG16Embedding(cut=10, input_size=(32, 32), projection_dim=100)
    assert len(model.features) == 10
    assert model(torch.rand(1, 3, 32, 32)).shape == (1, 100)
    unprojected = VGG16Embedding(cut=5, input_size=(32, 32), projection_dim=None)
    assert unprojected(torch.rand(1, 3, 32, 32)).shape == (1, 64 * 16 * 16)
    with pytest.raises(ValueError, match="cut"):
        VGG16Embedding(cut=32)


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_weights_round_trip_through_files(tmp_path, suffix):
    source = VGG16Embedding(cut=7, input_size=(16, 16), projection_dim=8)
    state = {f"features.{k}": v for k, v in source.features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # ignored
    path = tmp_path / f"vgg{suffix}"
    save_file(state, str(path)) if suffix == ".safetensors" else torch.save(state, path)
    target = VGG16Embedding(cut=7, input_size=(16, 16), projection_dim=8)
    x = torch.rand(1, 3, 16, 16)
    assert not torch.allclose(target(x), source(x))
    load_vgg16_weights(target, path)
    torch.testing.assert_close(target(x), source(x), rtol=0, atol=0)


def test_bad_weight_files(tmp_path):
    model = VGG16Embedding(cut=3, input_size=(16, 16), projection_dim=None)
    missing = tmp_path / "missing.safetensors"
    save_file({"features.0.weight": torch.zeros(64, 3, 3, 3)}, str(missing))
    message = r"missing\.safetensors: missing weights 'features.0.bias'"
    with pytest.raises(ValueError, match=message):
        load_vgg16_weights(model, missing)
    wrong = tmp_path / "wrong.safetensors"
    save_file({"features.0.weight": torch.zeros(64, 3, 5, 5), "features.0.bias": torch.zeros(64),
               "features.2.weight": torch.zeros(64, 64, 3, 3), "features.2.bias": torch.zeros(64)},
              str(wrong))
    with pytest.raises(ValueError, match="has shape"):
        load_vgg16_weights(model, wrong)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a weight file")
    with pytest.raises(ValueError, match=r"garbage\.pt: cannot read weights"):
        load_vgg16_weights(model, garbage)


def test_bilrp_on_bias_free_vgg_with_paper_rules_conserves():
    torch.manual_seed(0)
    model = VGG16Embedding(cut=10, input_size=(16, 16), projection_dim=None).double()
    for module in model.features:
        if isinstance(module, nn.Conv2d):
            module.bias.data.zero_()
            module.weight.data += 0.002
    mean = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).reshape(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).reshape(1, 3, 1, 1)
    images = [(torch.rand(1, 3, 16, 16, dtype=torch.float64) - mean) / std for _ in range(2)]
    composite = vgg16_composite(low=(0 - mean) / std, high=(1 - mean) / std)
    labels = grid_labels((16, 16), 8)
    outputs = range(0, 128 * 16, 41)
    pooled = [pooled_lrp_factors(model, x, labels, composite, outputs=outputs) for x in images]
    explanation = bilrp(*pooled)
    assert explanation.relevance.shape == (4, 4)
    with torch.no_grad():
        phi = [model(x).reshape(-1)[list(outputs)] for x in images]
    y_selected = float(phi[0] @ phi[1])
    assert y_selected > 0
    assert explanation.y == pytest.approx(y_selected, rel=1e-12)
    assert explanation.residual < 1e-6
