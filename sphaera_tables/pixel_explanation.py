"""``tables explain PAGE_A PAGE_B``: the explanation of any pair of page images.

Two pictures: digit-level links (as in a corpus run's ``explanations/``) and a pixel-level
BiLRP rendering (supplement Algorithm 1) through the whole chain, page pixels -> detector ->
bigram counts, with the paper's rules for the detector (zB on the input layer, LRP-gamma 0.5 on
every other convolution). The pixel level shows the ink itself: a historian sees which printed
strokes in page A answer which in page B.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np
from torch import nn

from digit_detector.model import DigitDetector
from digit_detector.page import load_page
from digit_detector.prepare import prepare_page
from sphaera_tables.bigram import PageModel
from sphaera_tables.explain import (
    Composite,
    Gamma,
    PairExplanation,
    PooledFactors,
    ZBox,
    bilrp,
    grid_labels,
    pooled_lrp_factors,
    render_pair,
)
from sphaera_tables.match_picture import render_match, strongest_only
from sphaera_tables.number_links import (
    DEFAULT_LINKS,
    explain_match,
    explanation_record,
)
from sphaera_tables.page_analysis import FeatureConfig, PageAnalysis, analyse_page
from sphaera_tables.scoring import CorpusStatistics, ScoreModel, page_maps

DETECTOR_GAMMA = 0.5
PIXEL_CELL = 8
DISPLAY_ZOOM = 2
"""The working-scale pages (digits about 9 px high) are drawn this many times larger."""


@dataclass
class PairResult:
    """Explanation of one pair: the JSON record and the two pictures (RGB uint8)."""

    record: dict
    digit_picture: np.ndarray
    pixel_picture: np.ndarray | None


def detector_composite(detector: DigitDetector) -> Composite:
    """zB (ink in [0, 1]) on the detector's input convolution, LRP-gamma on all others."""
    first = next(name for name, module in detector.named_modules() if isinstance(module, nn.Conv2d))
    return Composite({f"detector.{first}": ZBox(0.0, 1.0), nn.Conv2d: Gamma(DETECTOR_GAMMA)})


def explain_pages(path_a, path_b, detector: DigitDetector, *,
                  statistics: CorpusStatistics | None = None,
                  scoring: ScoreModel | None = None, features: FeatureConfig | None = None,
                  links: int = DEFAULT_LINKS, pixels: bool = True,
                  cell: int = PIXEL_CELL) -> PairResult:
    """Explain the score of two page images (paths); see the module docstring.

    ``statistics``: the corpus statistics of a corpus run (``OUT/corpus_statistics.npz``) and
    ``scoring`` its model, to score the pair as that run does; without them the pair is scored
    on its own (:meth:`~sphaera_tables.scoring.CorpusStatistics.neutral`). The pixel-level
    picture shows the bigram part of the score (the part the detector's pixels carry through
    the bigram head).
    """
    features = features or FeatureConfig()
    scoring = scoring or ScoreModel()
    statistics = statistics or CorpusStatistics.neutral()
    greys = [load_page(path_a), load_page(path_b)]
    analyses = [analyse_page(grey, detector, features) for grey in greys]
    maps = [page_maps(a.phi, a.cells.counts(), statistics, scoring) for a in analyses]
    explanation = explain_match(analyses[0], maps[0], analyses[1], maps[1])
    score = explanation.y
    record = explanation_record(str(path_a), str(path_b), score, explanation, *analyses, links,
                                scoring.model)
    digit_picture = render_match(greys[0], greys[1], explanation, *analyses, record)
    pixel_picture = None
    if pixels:
        head = features.head(detector.config)
        pixel = pixel_explanation(greys, analyses, maps, detector, head, cell)
        record["pixel_residual"] = pixel[0].residual
        explanation_px, image_a, image_b = pixel
        drawn = dataclasses.replace(
            explanation_px, relevance=strongest_only(explanation_px.relevance),
            centres_a=explanation_px.centres_a * DISPLAY_ZOOM,
            centres_b=explanation_px.centres_b * DISPLAY_ZOOM,
        )
        pixel_picture = render_pair(_zoom(image_a), _zoom(image_b), drawn)
    return PairResult(record, digit_picture, pixel_picture)


def pixel_explanation(greys, analyses: list[PageAnalysis], maps, detector, head, cell):
    """BiLRP on ``cell`` x ``cell`` super-pixels of the two working-scale pages.

    Returns ``(explanation, image_a, image_b)``, the images being the upright working-scale pages
    (uint8, ink dark) that the explanation's group centres refer to.
    """
    model = PageModel(detector, head).eval()
    composite = detector_composite(detector)
    pooled, images = [], []
    for grey, analysis, linear_maps in zip(greys, analyses, maps, strict=True):
        page_map = linear_maps.bigram
        prepared = prepare_page(grey, detector, scale=analysis.scale, rotation=analysis.rotation)
        x = prepared.image
        labels = grid_labels(tuple(x.shape[-2:]), cell)
        factors = pooled_lrp_factors(model, x, labels, composite)
        pooled.append(PooledFactors(values=page_map @ factors.values,
                                    phi=page_map @ factors.phi, centres=factors.centres))
        images.append(np.clip(255 * (1 - x[0, 0].numpy()), 0, 255).astype(np.uint8))
    explanation: PairExplanation = bilrp(pooled[0], pooled[1])
    return explanation, images[0], images[1]


def _zoom(image: np.ndarray) -> np.ndarray:
    return cv2.resize(image, None, fx=DISPLAY_ZOOM, fy=DISPLAY_ZOOM,
                      interpolation=cv2.INTER_CUBIC)
