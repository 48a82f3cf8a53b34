"""LRP rules for transformer layers: gated activations, LayerNorm, self-attention.

docs/method.md section 7, after Ali et al. 2022 ("XAI for Transformers") and Achtibat et al.
2024 (AttnLRP). Each rule recomputes its module's output from the module input so that the
output is linear in that input (and in the module's biases, which become leaves), with the
non-linear part held fixed at its forward value; the forward value itself is kept exactly.

    Gate()            x * g(x) (GELU, SiLU): g(x) = f(x) / x held fixed, so R_in = R_out
    LayerNormRule()   (x - mean(x)) / std * w + b: std held fixed, centring is linear
    AttentionRule()   softmax(q k^T / sqrt(d)) held fixed: out = W_o (A (x W_v + b_v)) + b_o
    transformer_composite(extra) -> Composite of these three (plus ``extra`` rules)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from sphaera_tables.explain.guardrails import UnsupportedModelError
from sphaera_tables.explain.rules import Composite, _safe_ratio, keep_value


@dataclass(frozen=True)
class Gate:
    """Identity rule for a gated activation ``f(x) = x g(x)``: all of ``R_out`` goes to ``x``.

    The gradient is ``f(x) / x`` (0 where ``x = 0``), so input x gradient returns exactly the
    output relevance of each unit (AttnLRP's rule for element-wise non-linearities).
    """

    layers: ClassVar[tuple] = (nn.GELU, nn.SiLU)

    def apply(self, module, inputs, output, session):
        gate = _safe_ratio(output, inputs).detach()
        return output.detach() + (inputs - inputs.detach()) * gate


@dataclass(frozen=True)
class LayerNormRule:
    """LayerNorm with the standard deviation held fixed (a per-token scale).

    ``z = (x - mean(x)) / std(x) * w + b``: the centring is a linear map, so its relevance is
    conserved; ``b`` becomes a bias leaf. For LayerNorm over the last dimension.
    """

    layers: ClassVar[tuple] = (nn.LayerNorm,)

    def apply(self, module, inputs, output, session):
        if len(module.normalized_shape) != 1:
            raise UnsupportedModelError(f"LayerNorm '{session.name_of(module)}': the rule covers "
                                        "normalisation over the last dimension only")
        centred = inputs - inputs.mean(dim=-1, keepdim=True)
        std = torch.sqrt(inputs.var(dim=-1, unbiased=False, keepdim=True) + module.eps)
        z = centred / std.detach()
        if module.weight is not None:
            z = z * module.weight.detach()
        if module.bias is not None:
            z = z + session.bias_leaf(module.bias, z, -1)
        return keep_value(output, z)


@dataclass(frozen=True)
class AttentionRule:
    """Self-attention with the attention weights held fixed (a constant gate on the values).

    For ``nn.MultiheadAttention`` called as ``attn(x, x, x)`` without masks: the output
    ``W_o (A (x W_v + b_v)) + b_o`` is linear in ``x`` and in the biases once
    ``A = softmax(q k^T / sqrt(d))`` is fixed (Ali et al.'s and AttnLRP's treatment of the
    softmax gate; the relevance of the scores themselves is not followed).
    """

    layers: ClassVar[tuple] = (nn.MultiheadAttention,)

    def apply_call(self, module, args, kwargs, output, session):
        query = args[0] if args else kwargs["query"]
        key = args[1] if len(args) > 1 else kwargs.get("key")
        value = args[2] if len(args) > 2 else kwargs.get("value")
        masks = [kwargs.get(name) for name in ("key_padding_mask", "attn_mask")] + list(args[3:4])
        name = session.name_of(module)
        if key is not query or value is not query:
            raise UnsupportedModelError(f"attention '{name}': the attention rule covers "
                                        "self-attention attn(x, x, x) only")
        if any(mask is not None for mask in masks) or kwargs.get("is_causal"):
            raise UnsupportedModelError(f"attention '{name}': masks are not supported by the "
                                        "attention rule yet")
        if not module._qkv_same_embed_dim or module.bias_k is not None:
            raise UnsupportedModelError(f"attention '{name}': separate q/k/v projections and "
                                        "add_bias_kv are not supported by the attention rule")
        x = query if module.batch_first else query.transpose(0, 1)
        out = _fixed_attention(module, x, session)
        out = out if module.batch_first else out.transpose(0, 1)
        return (keep_value(output[0], out), *output[1:])


def _fixed_attention(module, x, session):
    """``W_o (A (x W_v + b_v)) + b_o`` for x (N, T, E), A from the forward values, detached."""
    n, t, e = x.shape
    heads = module.num_heads
    w_q, w_k, w_v = module.in_proj_weight.detach().chunk(3)
    b_q = b_k = b_v = None
    if module.in_proj_bias is not None:
        b_q, b_k, b_v = module.in_proj_bias.detach().chunk(3)
    with torch.no_grad():
        q = nn.functional.linear(x, w_q, b_q).reshape(n, t, heads, -1).transpose(1, 2)
        k = nn.functional.linear(x, w_k, b_k).reshape(n, t, heads, -1).transpose(1, 2)
        weights = torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5, dim=-1)
    v = nn.functional.linear(x, w_v)
    if b_v is not None:
        v = v + session.bias_leaf(b_v, v, -1)
    mixed = (weights @ v.reshape(n, t, heads, -1).transpose(1, 2)).transpose(1, 2).reshape(n, t, e)
    out = nn.functional.linear(mixed, module.out_proj.weight.detach())
    if module.out_proj.bias is not None:
        out = out + session.bias_leaf(module.out_proj.bias, out, -1)
    return out


def transformer_composite(extra: dict | None = None) -> Composite:
    """The rules of this module on every GELU / SiLU, LayerNorm and MultiheadAttention module,
    plus ``extra`` (e.g. ``{nn.Linear: Gamma(0.0)}``), which wins where both match."""
    rules = dict(extra or {})
    for layer_type, rule in ((nn.GELU, Gate()), (nn.SiLU, Gate()), (nn.LayerNorm, LayerNormRule()),
                             (nn.MultiheadAttention, AttentionRule())):
        rules.setdefault(layer_type, rule)
    return Composite(rules)
