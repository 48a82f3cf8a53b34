"""BiLRP explanations of dot-product similarity models, for any torch model of supported layers.

The similarity ``y(x, x') = <phi(x), phi(x')>`` is explained on pairs of input features by
BiLRP (docs/method.md section 2), computed in factored form: first-order LRP maps of every embedding
dimension, once per input, pooled onto groups of features and multiplied per pair.

Rules (attached by layer name or type through a :class:`Composite`)::

    Gamma(gamma)            LRP-gamma for Linear / Conv layers (gamma = 0: LRP-0)
    Epsilon(eps)            LRP-epsilon
    ZBox(low, high)         zB rule for the layer reading the pixels, bounded in [low, high]
    Composite({"detector.0": ZBox(0, 1), torch.nn.Conv2d: Gamma(0.5)})

Transformers (docs/method.md section 7): ``transformer_composite({nn.Linear: Gamma(0)})``
attaches ``Gate()`` to GELU / SiLU, ``LayerNormRule()`` to LayerNorm and ``AttentionRule()`` to
``nn.MultiheadAttention`` (self-attention, attention weights held fixed).

Parameter-free operations (ReLU, min, max, shifts, padding, pooling, sums, flatten) need no
rule: they are differentiated as they are, which is exactly the rule for positively
homogeneous layers (winner-take-all for min and max).

One call (docs/method.md sections 2, 4-6)::

    bilrp(model, x_a, x_b, composite=None, pool=None, select=None, similarity="dot",
          fold_batch_norm=True) -> PairExplanation      # relevance, y, residual, bias_relevance

folds BatchNorm on a copy (``canonize``), checks every operation of the model (an unsupported one
raises ``UnsupportedModelError`` naming the module), and warns (``ConservationWarning``,
``BiasRelevanceWarning``) when the explanation does not add up to the score within 1 %.

Factors and pooling (cache the pooled factors per image)::

    lrp_factors(model, x, composite=None, *, outputs=None, strategy="auto",
                memory_budget_bytes=2**30, select=None) -> Factors   # values, phi, bias (h,)
    gradient_factors(model, x, ...) -> Factors                 # plain gradients (Curvature)
    grid_labels((H, W), cell) / box_labels((H, W), boxes) -> labels (H, W)
    pool(factors, labels) -> PooledFactors                     # values (h, G), phi, centres
    pooled_lrp_factors(model, x, labels, composite, ...) -> PooledFactors   # pools chunk-wise

Pairs::

    bilrp(pooled_a, pooled_b, similarity="dot") -> PairExplanation   # = bilrp_from_factors
    saliency_matrix(x_a, x_b, labels_a, labels_b) / curvature_matrix(grads_a, grads_b, ...)
    invariance(similarity, local) -> float         # paper Eq. 7

Hessian x Product is ``bilrp`` on factors computed with ``composite=None``.

Drawing (supplement Algorithm 1)::

    render_pair(img_a, img_b, explanation, low=0.01, high=4, power=2) -> RGB array
    render_box_links(img_a, img_b, boxes_a, boxes_b, relevance, ...) -> RGB array
    save_png(path, rgb)

VGG-16 (paper section 5): ``VGG16Embedding(cut, input_size, projection_dim)``,
``load_vgg16_weights(model, path)``, ``vgg16_composite()``.

Example::

    composite = Composite({torch.nn.Conv2d: Gamma(0.5)})
    labels = grid_labels(page_a.shape[-2:], 20)
    pa = pooled_lrp_factors(model, page_a, labels, composite)   # once per page, cache it
    pb = pooled_lrp_factors(model, page_b, labels, composite)
    explanation = bilrp(pa, pb)                                # per pair: one matrix product
    save_png("pair.png", render_pair(img_a, img_b, explanation))
"""

from sphaera_tables.explain.canonizers import canonize, select_output
from sphaera_tables.explain.factors import Factors, gradient_factors, lrp_factors
from sphaera_tables.explain.guardrails import (
    BiasRelevanceWarning,
    ConservationWarning,
    ExplanationWarning,
    UnsupportedModelError,
)
from sphaera_tables.explain.invariance import invariance
from sphaera_tables.explain.model_pair import bilrp, explain_pair
from sphaera_tables.explain.pair_relevance import (
    PairExplanation,
    bilrp_from_factors,
    conservation_residual,
    curvature_matrix,
    saliency_matrix,
)
from sphaera_tables.explain.pooling import (
    PooledFactors,
    box_labels,
    grid_labels,
    pool,
    pooled_lrp_factors,
)
from sphaera_tables.explain.render import (
    draw_links,
    graded,
    link_strengths,
    render_box_links,
    render_pair,
    save_png,
)
from sphaera_tables.explain.rules import Composite, Epsilon, Gamma, ZBox
from sphaera_tables.explain.transformer_rules import (
    AttentionRule,
    Gate,
    LayerNormRule,
    transformer_composite,
)
from sphaera_tables.explain.vgg import VGG16Embedding, load_vgg16_weights, vgg16_composite

__all__ = [
    "Composite", "Epsilon", "Gamma", "ZBox",
    "Gate", "LayerNormRule", "AttentionRule", "transformer_composite",
    "Factors", "lrp_factors", "gradient_factors",
    "PooledFactors", "grid_labels", "box_labels", "pool", "pooled_lrp_factors",
    "PairExplanation", "bilrp", "bilrp_from_factors", "explain_pair", "conservation_residual",
    "saliency_matrix", "curvature_matrix",
    "canonize", "select_output",
    "UnsupportedModelError", "ExplanationWarning", "ConservationWarning", "BiasRelevanceWarning",
    "invariance",
    "link_strengths", "graded", "draw_links", "render_pair", "render_box_links", "save_png",
    "VGG16Embedding", "load_vgg16_weights", "vgg16_composite",
]
