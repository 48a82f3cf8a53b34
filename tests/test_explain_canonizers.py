"""Canonizers: BatchNorm folding, residual splits, and a ResNet-18-like model explained exactly."""

import copy

import numpy as np
import pytest
import torch
from explain_inputs import rand
from torch import nn

from sphaera_tables.explain import (
    Composite,
    Gamma,
    UnsupportedModelError,
    ZBox,
    bilrp,
    canonize,
    lrp_factors,
)


def randomise_batch_norms(model, seed=0):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                n = module.num_features
                module.running_mean.copy_(torch.randn(n, generator=generator) * 0.3)
                module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
                module.weight.copy_(torch.randn(n, generator=generator))  # some negative scales
                module.bias.copy_(torch.randn(n, generator=generator) * 0.3)
    return model


# ---------------------------------------------------------------- BatchNorm folding


def test_fold_gives_the_textbook_weights_and_leaves_the_users_model_untouched():
    torch.manual_seed(0)
    model = randomise_batch_norms(nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3),
                                                nn.ReLU())).double().eval()
    before = copy.deepcopy(model.state_dict())
    x = rand(1, 2, 5, 5)
    folded = canonize(model, x)
    conv, norm = model[0], model[1]
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    expected_weight = conv.weight * scale[:, None, None, None]
    expected_bias = scale * (conv.bias - norm.running_mean) + norm.bias
    torch.testing.assert_close(folded[0].weight, expected_weight, rtol=1e-12, atol=0)
    torch.testing.assert_close(folded[0].bias, expected_bias, rtol=1e-12, atol=0)
    assert isinstance(folded[1], nn.Identity)
    assert isinstance(model[1], nn.BatchNorm2d)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])


def test_fold_adds_a_bias_to_a_bias_free_layer_and_keeps_the_output():
    torch.manual_seed(1)
    model = randomise_batch_norms(nn.Sequential(nn.Linear(4, 3, bias=False),
                                                nn.BatchNorm1d(3))).double().eval()
    x = rand(1, 4)
    folded = canonize(model, x)
    assert folded[0].bias is not None
    torch.testing.assert_close(folded(x), model(x), rtol=1e-12, atol=1e-14)


def test_gamma_sees_the_folded_weights_not_the_raw_ones():
    """LRP-gamma on the folded layer, against a hand-built layer with the folded weights."""
    torch.manual_seed(2)
    model = randomise_batch_norms(nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4),
                                                nn.ReLU())).double().eval()
    x = rand(1, 5)
    scale = (model[1].weight / torch.sqrt(model[1].running_var + model[1].eps)).detach()
    hand = nn.Sequential(nn.Linear(5, 4), nn.ReLU()).double()
    with torch.no_grad():
        hand[0].weight.copy_(model[0].weight * scale[:, None])
        hand[0].bias.copy_(scale * (model[0].bias - model[1].running_mean) + model[1].bias)
    composite = Composite({nn.Linear: Gamma(0.5)})
    expected = lrp_factors(hand, x, composite)
    got = lrp_factors(canonize(model, x), x, composite)
    np.testing.assert_allclose(got.values, expected.values, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(got.bias, expected.bias, rtol=1e-10, atol=1e-14)


def test_batch_norm_not_after_a_layer_is_refused_by_name():
    model = nn.Sequential(nn.BatchNorm1d(4), nn.Linear(4, 2, bias=False)).double().eval()
    with pytest.raises(UnsupportedModelError, match=r"'0' \(BatchNorm1d\) does not read"):
        canonize(model, rand(1, 4))


# ---------------------------------------------------------------- residual additions


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = nn.Linear(4, 4, bias=False)

    def forward(self, h):
        return h + torch.relu(self.inner(h))


def residual_model(seed=3):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 4, bias=False), nn.ReLU(), Residual(),
                          nn.Linear(4, 2, bias=False)).double()
    with torch.no_grad():
        model[0].weight.abs_()
    return model


def reference_residual_relevance(model, x, m, gamma):
    """Layer by layer: LRP-0 on the head, the proportional split at the addition, LRP-gamma in
    the branch, LRP-0 on the first layer (0/0 = 0)."""
    a_w, b_w, c_w = (model[0].weight.detach(), model[2].inner.weight.detach(),
                     model[3].weight.detach())
    x = x[0]

    def div(n, d):
        return torch.where(d == 0, torch.zeros_like(n), n / torch.where(d == 0, 1.0, d))

    h = torch.relu(a_w @ x)
    branch = torch.relu(b_w @ h)
    out = h + branch
    r_out = out * c_w[m]
    r_direct, r_branch = div(h * r_out, out), div(branch * r_out, out)
    rho = b_w + gamma * b_w.clamp(min=0)
    z_rho = rho @ h
    r_h = r_direct + h * (rho.T @ div(r_branch, z_rho))
    return x * (a_w.T @ div(r_h, a_w @ x))


@pytest.mark.parametrize("gamma", [0.0, 0.7])
def test_residual_addition_splits_relevance_in_proportion_to_its_inputs(gamma):
    model, x = residual_model(), rand(1, 3, seed=4)
    factors = lrp_factors(model, x, Composite({"2.inner": Gamma(gamma)}))
    for m in range(2):
        expected = reference_residual_relevance(model, x, m, gamma)
        np.testing.assert_allclose(factors.values[m], expected.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(factors.residual(), 0, atol=1e-12)


# ---------------------------------------------------------------- a ResNet-18-like model


class BasicBlock(nn.Module):
    """ResNet's basic block, with conv biases as well as BatchNorm."""

    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                            nn.BatchNorm2d(c_out))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class TinyResNet(nn.Module):
    """ResNet-18's layout in miniature: stem, two stages of basic blocks, pooling, linear head."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8),
                                  nn.ReLU(), nn.MaxPool2d(2))
        self.layer1 = nn.Sequential(BasicBlock(8, 8, 1), BasicBlock(8, 8, 1))
        self.layer2 = nn.Sequential(BasicBlock(8, 16, 2), BasicBlock(16, 16, 1))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.layer2(self.layer1(self.stem(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


def trained_resnet(steps=15, seed=0):
    """Briefly trained on random images against random targets (BatchNorm statistics learnt)."""
    torch.manual_seed(seed)
    model = TinyResNet()
    optimiser = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(steps):
        x = torch.rand(8, 3, 16, 16)
        loss = ((model(x) - x.mean(dim=(2, 3)).repeat(1, 4)[:, :10]) ** 2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model.eval()


RESNET_COMPOSITE = Composite({"stem.0": ZBox(0.0, 1.0), nn.Conv2d: Gamma(0.25),
                              nn.Linear: Gamma(0.0)})


@pytest.mark.parametrize("kind", ["random", "trained"])
def test_resnet_with_batch_norm_and_biases_is_explained_within_1e_4(kind):
    torch.manual_seed(5)
    model = randomise_batch_norms(TinyResNet()).eval() if kind == "random" else trained_resnet()
    x_a, x_b = rand(1, 3, 16, 16, seed=6, dtype=torch.float32), rand(1, 3, 16, 16, seed=7,
                                                                     dtype=torch.float32)
    labels = np.arange(16 * 16).reshape(16, 16) // 64  # four horizontal bands
    explanation = bilrp(model, x_a, x_b, composite=RESNET_COMPOSITE, pool=labels,
                        fold_batch_norm=True)
    with torch.no_grad():
        y = float((model(x_a) * model(x_b)).sum())
    assert explanation.y == pytest.approx(y, rel=1e-5)
    assert explanation.relevance.shape == (4, 4)
    assert explanation.residual <= 1e-4
    assert abs(explanation.relevance.sum() + explanation.bias_relevance - y) <= 1e-4 * abs(y)
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # user's model untouched


def test_resnet_without_folding_is_refused_at_the_first_batch_norm():
    model = randomise_batch_norms(TinyResNet()).eval()
    with pytest.raises(UnsupportedModelError, match=r"'stem.1' \(BatchNorm2d\)"):
        bilrp(model, rand(1, 3, 16, 16, dtype=torch.float32),
              rand(1, 3, 16, 16, seed=1, dtype=torch.float32), fold_batch_norm=False)
