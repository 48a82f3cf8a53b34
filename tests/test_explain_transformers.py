"""Transformer rules: gated activations, LayerNorm, attention; tiny ViT- and BERT-like encoders."""

import warnings

import numpy as np
import pytest
import torch
from explain_inputs import F64, rand
from torch import nn

from sphaera_tables.explain import (
    Composite,
    Gamma,
    UnsupportedModelError,
    bilrp,
    lrp_factors,
)
from sphaera_tables.explain.transformer_rules import (
    AttentionRule,
    Gate,
    LayerNormRule,
    transformer_composite,
)

# ---------------------------------------------------------------- the rules, against known answers


class SelfAttention(nn.Module):
    """``attention(x, x, x)`` on a batch-first input, flattened; ``mask``: an attention mask."""

    def __init__(self, attention, mask=None):
        super().__init__()
        self.attention = attention
        self.mask = mask

    def forward(self, x):
        x = x if self.attention.batch_first else x.transpose(0, 1)
        out = self.attention(x, x, x, need_weights=False, attn_mask=self.mask)[0]
        return (out if self.attention.batch_first else out.transpose(0, 1)).flatten(1)


def test_gate_hands_each_unit_its_output_relevance():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5, bias=False), nn.GELU(),
                          nn.Linear(5, 3, bias=False)).double()
    x = rand(1, 4) - 0.5
    factors = lrp_factors(model, x, Composite({nn.GELU: Gate()}))
    w1, w2 = model[0].weight.detach(), model[2].weight.detach()
    pre = (w1 @ x[0])
    post = nn.functional.gelu(pre)
    for m in range(3):
        r_post = post * w2[m]  # LRP-0 of the last layer
        expected = x[0] * (w1.T @ (r_post / pre))  # gate: R_pre = R_post, then LRP-0
        np.testing.assert_allclose(factors.values[m], expected.numpy(), rtol=1e-10)
    np.testing.assert_allclose(factors.residual(), 0, atol=1e-12)


def test_layer_norm_rule_centres_linearly_with_the_scale_held_fixed():
    torch.manual_seed(1)
    norm = nn.LayerNorm(5).double()
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-0.3, 0.3)
    x = rand(1, 5, seed=2)
    factors = lrp_factors(norm, x, Composite({nn.LayerNorm: LayerNormRule()}))
    std = torch.sqrt(x.var(unbiased=False) + norm.eps)
    centring = torch.eye(5, dtype=F64) - 1 / 5
    for m in range(5):
        expected = x[0] * centring[m] * norm.weight[m].detach() / std
        np.testing.assert_allclose(factors.values[m], expected.numpy(), rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(factors.bias, norm.bias.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(factors.residual(), 0, atol=1e-12)


@pytest.mark.parametrize("batch_first", [True, False])
def test_attention_rule_is_the_jacobian_with_attention_weights_fixed(batch_first):
    torch.manual_seed(3)
    attention = nn.MultiheadAttention(6, 2, batch_first=batch_first).double().eval()
    x = rand(1, 3, 6, seed=4) - 0.5
    factors = lrp_factors(SelfAttention(attention), x,
                          Composite({nn.MultiheadAttention: AttentionRule()}))
    with torch.no_grad():
        _, weights = attention(*(x if batch_first else x.transpose(0, 1),) * 3,
                               average_attn_weights=False)
        w_v = attention.in_proj_weight[12:]
        w_o = attention.out_proj.weight
        # d out[t, e] / d x[s, j] = sum_h A_h[t, s] (W_o[:, head h] W_v[head h, :])[e, j]
        heads = torch.stack([w_o[:, 3 * h:3 * h + 3] @ w_v[3 * h:3 * h + 3] for h in range(2)])
        jacobian = torch.einsum("hts,hej->tesj", weights[0], heads)
    expected = (x[0][None, None] * jacobian).reshape(18, 3, 6)
    np.testing.assert_allclose(factors.values, expected.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(factors.residual(), 0, atol=1e-12)


def test_a_concatenated_constant_is_counted_as_a_bias():
    class WithToken(nn.Module):
        def __init__(self):
            super().__init__()
            self.token = nn.Parameter(torch.tensor([[0.25, -1.0]], dtype=F64))

        def forward(self, x):
            return torch.cat([self.token, x], dim=1) * 2

    x = rand(1, 3)
    factors = lrp_factors(WithToken(), x)
    np.testing.assert_allclose(factors.bias, [0.5, -2.0, 0, 0, 0], atol=1e-15)
    np.testing.assert_allclose(factors.values[2:], np.diag(2 * x[0].numpy()), atol=1e-15)


def test_attention_with_a_mask_is_refused_clearly():
    attention = nn.MultiheadAttention(4, 1, batch_first=True).double().eval()
    masked = SelfAttention(attention, mask=torch.zeros(2, 2, dtype=torch.bool))
    with pytest.raises(UnsupportedModelError, match="masks are not supported"):
        lrp_factors(masked, rand(1, 2, 4), transformer_composite())


# ---------------------------------------------------------------- tiny encoders


def encoder_layer(width, norm_first):
    return nn.TransformerEncoderLayer(width, 2, 2 * width, dropout=0.0, activation=nn.GELU(),
                                      batch_first=True, norm_first=norm_first)


class TinyViT(nn.Module):
    """Patches -> class token and position embedding -> pre-norm encoder layers -> LayerNorm ->
    the class token's output."""

    def __init__(self, width=16, patch=4, size=16, depth=2):
        super().__init__()
        self.patches = nn.Conv2d(3, width, patch, patch)
        self.cls = nn.Parameter(0.1 * torch.randn(1, 1, width))
        self.position = nn.Parameter(0.1 * torch.randn(1, (size // patch) ** 2 + 1, width))
        self.layers = nn.Sequential(*[encoder_layer(width, True) for _ in range(depth)])
        self.norm = nn.LayerNorm(width)

    def forward(self, x):
        tokens = self.patches(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.cls.expand(len(x), -1, -1), tokens], dim=1) + self.position
        return self.norm(self.layers(tokens))[:, 0]


class TinyBert(nn.Module):
    """Token embeddings -> + positions -> LayerNorm -> post-norm encoder layers -> mean pooling
    (a sentence-embedding model; the input is the sequence of token embeddings)."""

    def __init__(self, width=16, length=6, depth=2):
        super().__init__()
        self.position = nn.Embedding(length, width)
        self.norm = nn.LayerNorm(width)
        self.layers = nn.ModuleList([encoder_layer(width, False) for _ in range(depth)])

    def forward(self, embeddings):
        x = self.norm(embeddings + self.position.weight[None, :embeddings.shape[1]])
        for layer in self.layers:
            x = layer(x)
        return x.mean(dim=1)


def briefly_trained(model, make_input, steps=10):
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        x_a, x_b = make_input(), make_input()
        y = (model(x_a) * model(x_b)).sum(dim=1)
        loss = ((y - (x_a * x_b).mean(dim=tuple(range(1, x_a.dim())))) ** 2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model.eval()


COMPOSITE = transformer_composite({nn.Linear: Gamma(0.0)})


def explain_quietly(model, x_a, x_b, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # biases absorb a share: reported, checked below
        return bilrp(model, x_a, x_b, composite=COMPOSITE, **options)


@pytest.mark.parametrize("trained", [False, True])
def test_tiny_vit_similarity_is_explained_within_1e_2(trained):
    torch.manual_seed(5)
    model = TinyViT().eval()
    if trained:
        model = briefly_trained(model.train(), lambda: torch.rand(4, 3, 16, 16))
    x_a, x_b = rand(1, 3, 16, 16, seed=6, dtype=torch.float32), rand(1, 3, 16, 16, seed=7,
                                                                     dtype=torch.float32)
    labels = np.arange(16 * 16).reshape(16, 16) // 64
    explanation = explain_quietly(model, x_a, x_b, pool=labels)
    with torch.no_grad():
        y = float((model(x_a) * model(x_b)).sum())
    assert explanation.y == pytest.approx(y, rel=1e-5)
    assert explanation.relevance.shape == (4, 4)
    assert explanation.residual <= 1e-2


@pytest.mark.parametrize("trained", [False, True])
@pytest.mark.parametrize("similarity", ["dot", "cosine"])
def test_tiny_bert_sentence_similarity_is_explained_token_by_token(trained, similarity):
    torch.manual_seed(8)
    model = TinyBert().eval()
    if trained:
        model = briefly_trained(model.train(), lambda: torch.randn(4, 6, 16))
    vocabulary = nn.Embedding(20, 16)
    sentence_a = vocabulary(torch.tensor([[1, 4, 7, 2, 9, 3]])).detach()
    sentence_b = vocabulary(torch.tensor([[1, 4, 8, 8, 5, 3]])).detach()
    tokens = np.repeat(np.arange(6)[:, None], 16, axis=1)
    explanation = explain_quietly(model, sentence_a, sentence_b, pool=tokens,
                                  similarity=similarity)
    with torch.no_grad():
        phi_a, phi_b = model(sentence_a)[0], model(sentence_b)[0]
    y = float(phi_a @ phi_b)
    if similarity == "cosine":
        y /= float(phi_a.norm() * phi_b.norm())
    assert explanation.y == pytest.approx(y, rel=1e-5)
    assert explanation.relevance.shape == (6, 6)
    assert explanation.residual <= 1e-2


def test_all_batching_strategies_agree_on_a_vit_with_its_constant_leaves():
    torch.manual_seed(9)
    model = TinyViT(width=8, size=8, depth=1).double().eval()
    x = rand(1, 3, 8, 8, seed=10)
    reference = lrp_factors(model, x, COMPOSITE, strategy="loop")
    assert np.abs(reference.bias).max() > 0
    for strategy in ("vmap", "batch"):
        factors = lrp_factors(model, x, COMPOSITE, strategy=strategy, memory_budget_bytes=10**5)
        np.testing.assert_allclose(factors.values, reference.values, rtol=1e-9, atol=1e-13)
        np.testing.assert_allclose(factors.bias, reference.bias, rtol=1e-9, atol=1e-13)
