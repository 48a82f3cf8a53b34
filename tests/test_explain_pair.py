"""The one call ``bilrp(model, x_a, x_b, ...)`` and cosine similarity."""

import warnings

import numpy as np
import pytest
import torch
from explain_inputs import rand
from safetensors.torch import save_file
from torch import nn

from sphaera_tables.explain import (
    Composite,
    Gamma,
    VGG16Embedding,
    bilrp,
    explain_pair,
    grid_labels,
    load_vgg16_weights,
    pooled_lrp_factors,
    vgg16_composite,
)

COMPOSITE = Composite({nn.Linear: Gamma(0.2)})


def mlp(bias=False, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 10, bias=bias), nn.ReLU(),
                         nn.Linear(10, 6, bias=bias), nn.ReLU()).double()


def test_one_call_equals_the_cached_factor_path():
    model, x_a, x_b = mlp(), rand(1, 3, 4, seed=1), rand(1, 3, 4, seed=2)
    labels = np.array([[0, 0, 1, 1]] * 3)
    one = bilrp(model, x_a, x_b, composite=COMPOSITE, pool=labels)
    two = bilrp(pooled_lrp_factors(model, x_a, labels, COMPOSITE),
                pooled_lrp_factors(model, x_b, labels, COMPOSITE))
    np.testing.assert_allclose(one.relevance, two.relevance, rtol=1e-12)
    assert one.y == pytest.approx(two.y, rel=1e-14)
    assert one.relevance.shape == (2, 2) and one.residual < 1e-12


def test_pool_none_gives_every_feature_its_own_group_and_pairs_of_maps_are_accepted():
    model, x_a, x_b = mlp(), rand(1, 3, 4, seed=1), rand(1, 3, 4, seed=2)
    full = explain_pair(model, x_a, x_b, composite=COMPOSITE)
    assert full.relevance.shape == (12, 12)
    rows = np.repeat(np.arange(3)[:, None], 4, axis=1)
    columns = np.repeat(np.arange(4)[None, :], 3, axis=0)
    mixed = explain_pair(model, x_a, x_b, composite=COMPOSITE, pool=(rows, columns))
    expected = full.relevance.reshape(3, 4, 3, 4).sum(axis=(1, 2))
    np.testing.assert_allclose(mixed.relevance, expected, rtol=1e-12)


def test_explanation_is_symmetric_in_the_two_inputs():
    model, x_a, x_b = mlp(bias=True), rand(1, 3, 4, seed=3), rand(1, 3, 4, seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ab = bilrp(model, x_a, x_b, composite=COMPOSITE)
        ba = bilrp(model, x_b, x_a, composite=COMPOSITE)
    np.testing.assert_allclose(ab.relevance, ba.relevance.T, rtol=1e-12)
    assert ab.bias_relevance == pytest.approx(ba.bias_relevance, rel=1e-12)


@pytest.mark.parametrize("bias", [False, True])
def test_cosine_similarity_is_the_dot_explanation_scaled_by_both_norms(bias):
    model, x_a, x_b = mlp(bias=bias), rand(1, 3, 4, seed=5), rand(1, 3, 4, seed=6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dot = bilrp(model, x_a, x_b, composite=COMPOSITE)
        cosine = bilrp(model, x_a, x_b, composite=COMPOSITE, similarity="cosine")
    with torch.no_grad():
        phi_a, phi_b = model(x_a)[0], model(x_b)[0]
    norms = float(phi_a.norm() * phi_b.norm())
    assert cosine.y == pytest.approx(float(torch.cosine_similarity(phi_a, phi_b, dim=0)),
                                     rel=1e-12)
    np.testing.assert_allclose(cosine.relevance, dot.relevance / norms, rtol=1e-12)
    assert cosine.bias_relevance == pytest.approx(dot.bias_relevance / norms, rel=1e-12,
                                                  abs=1e-15)
    assert cosine.residual < 1e-12  # conserved: relevance + bias relevance = cosine
    assert cosine.relevance.sum() + cosine.bias_relevance == pytest.approx(cosine.y, rel=1e-12)


def test_unknown_similarity_is_refused():
    with pytest.raises(ValueError, match="unknown similarity"):
        bilrp(mlp(), rand(1, 3, 4), rand(1, 3, 4, seed=1), similarity="euclidean")


def test_vgg16_with_user_weights_on_two_images(tmp_path):
    """The paper's section 5 example in miniature: user weights from a file, paper's rules."""
    source = VGG16Embedding(cut=7, input_size=(16, 16), projection_dim=8)
    path = tmp_path / "vgg.safetensors"
    save_file({f"features.{k}": v for k, v in source.features.state_dict().items()}, str(path))
    model = load_vgg16_weights(VGG16Embedding(cut=7, input_size=(16, 16), projection_dim=8),
                               path).double()
    image_a, image_b = rand(1, 3, 16, 16, seed=7), rand(1, 3, 16, 16, seed=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # VGG's conv biases absorb a share: reported
        explanation = bilrp(model, image_a, image_b, composite=vgg16_composite(),
                            pool=grid_labels((16, 16), 8))
    with torch.no_grad():
        y = float((source.double()(image_a) * source(image_b)).sum())
    assert explanation.y == pytest.approx(y, rel=1e-12)
    assert explanation.relevance.shape == (4, 4)
    assert explanation.residual < 1e-10
