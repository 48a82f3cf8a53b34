"""``tables explain PAGE_A PAGE_B``: the explanation of any pair of page images.

Two pictures: digit-level links (as in a corpus run's ``explanations/``) and a pixel-level
BiLRP rendering (supplement Algorithm 1) through the whole chain, page pixels -> detector ->
bigram counts, with the paper's rules for the detector (zB on the input layer, LRP-gamma 0.5 on
every other convolution). The pixel level shows the ink itself: a historian sees which printed
strokes in page A answer which in page B. Its LRP passes run on crops around the digits
(:mod:`sphaera_tables.pixel_crops`), equal to whole-page passes and seconds per pair.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from torch import nn

from digit_detector.model import DigitDetector
from digit_detector.page import load_page
from digit_detector.prepare import prepare_page
from sphaera_tables.explain import (
    Composite,
    Gamma,
    PairExplanation,
    PooledFactors,
    ZBox,
    bilrp,
    draw_links,
    graded,
    grid_labels,
)
from sphaera_tables.match_picture import render_match, strongest_only
from sphaera_tables.number_links import (
    DEFAULT_LINKS,
    explain_match,
    explanation_record,
)
from sphaera_tables.page_analysis import FeatureConfig, PageAnalysis, analyse_page
from sphaera_tables.pixel_crops import cropped_pooled_factors
from sphaera_tables.progress import Progress, relabelled, silent, tracked
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
                  cell: int = PIXEL_CELL, progress: Progress = silent) -> PairResult:
    """Explain the score of two page images (paths); see the module docstring.

    ``statistics``: the corpus statistics of a corpus run (``OUT/corpus_statistics.npz``) and
    ``scoring`` its model, to score the pair as that run does; without them the pair is scored
    on its own (:meth:`~sphaera_tables.scoring.CorpusStatistics.neutral`). The pixel-level
    picture shows the bigram part of the score (the part the detector's pixels carry through
    the bigram head). ``progress(done, total, message)`` follows the page analyses and the
    pixel-level relevance.
    """
    features = features or FeatureConfig()
    scoring = scoring or ScoreModel()
    statistics = statistics or CorpusStatistics.neutral()
    greys = [load_page(path_a), load_page(path_b)]
    analyses = [analyse_page(grey, detector, features)
                for grey in tracked(greys, 2, progress, "Analysing pages")]
    maps = [page_maps(a.phi, a.cells.counts(), statistics, scoring) for a in analyses]
    explanation = explain_match(analyses[0], maps[0], analyses[1], maps[1])
    record = explanation_record(str(path_a), str(path_b), explanation, *analyses, links,
                                scoring.model)
    digit_picture = render_match(greys[0], greys[1], explanation, *analyses, record)
    pixel_picture = None
    if pixels:
        head = features.head(detector.config)
        pixel = pixel_explanation(greys, analyses, maps, detector, head, cell, progress)
        record["pixel_residual"] = pixel[0].residual
        pixel_picture = pixel_picture_of(*pixel)
    return PairResult(record, digit_picture, pixel_picture)


def pixel_picture_of(explanation: PairExplanation, image_a: np.ndarray,
                     image_b: np.ndarray) -> np.ndarray:
    """The pixel-level picture (RGB uint8): the strongest super-pixel links drawn on the two
    working-scale pages, zoomed ``DISPLAY_ZOOM`` times, each as dark as its share of the
    strongest one (:func:`graded`)."""
    return draw_links(_zoom(image_a), _zoom(image_b), explanation.centres_a * DISPLAY_ZOOM,
                      explanation.centres_b * DISPLAY_ZOOM,
                      graded(strongest_only(explanation.relevance)))


def pixel_explanation(greys, analyses: list[PageAnalysis], maps, detector, head, cell,
                      progress: Progress = silent):
    """BiLRP on ``cell`` x ``cell`` super-pixels of the two working-scale pages.

    Returns ``(explanation, image_a, image_b)``, the images being the upright working-scale pages
    (uint8, ink dark) that the explanation's group centres refer to.
    """
    pages = [page_pixel_factors(grey, analysis, detector, head, cell,
                                relabelled(progress, f"Pixel relevance, page {side}"))
             for grey, analysis, side in zip(greys, analyses, "AB", strict=True)]
    explanation = pixel_pair(pages[0][0], maps[0], pages[1][0], maps[1])
    return explanation, pages[0][1], pages[1][1]


def page_pixel_factors(grey: np.ndarray, analysis: PageAnalysis, detector, head, cell: int,
                       progress: Progress = silent) -> tuple[PooledFactors, np.ndarray]:
    """One page's part of the pixel level, reusable for every pair it is in.

    Returns the LRP factors of its 100 bigram counts pooled on the ``cell`` x ``cell``
    super-pixels of the upright working-scale page that carry relevance (:func:`_carrying`;
    their centres say which), and that page (uint8, ink dark).
    """
    x = prepare_page(grey, detector, scale=analysis.scale, rotation=analysis.rotation).image
    labels = grid_labels(tuple(x.shape[-2:]), cell)
    factors = cropped_pooled_factors(detector, head, x, labels, detector_composite(detector),
                                     progress=progress)
    return _carrying(factors), np.clip(255 * (1 - x[0, 0].numpy()), 0, 255).astype(np.uint8)


def pixel_pair(factors_a: PooledFactors, maps_a, factors_b: PooledFactors,
               maps_b) -> PairExplanation:
    """The pixel-level BiLRP of a pair from its pages' factors and linear maps (the bigram part
    of the score, ``maps.bigram`` (K, 100)), over the super-pixels the factors hold (those
    that carry relevance, :func:`page_pixel_factors`)."""
    pooled = [PooledFactors(values=linear_maps.bigram @ factors.values,
                            phi=linear_maps.bigram @ factors.phi, centres=factors.centres)
              for factors, linear_maps in ((factors_a, maps_a), (factors_b, maps_b))]
    return bilrp(pooled[0], pooled[1])


def _carrying(factors: PooledFactors) -> PooledFactors:
    """Only the super-pixels that carry some relevance: a super-pixel whose factors are all zero
    (paper, ink far from any digit) joins nothing, and the relevance matrix of every pair the
    page is in, the product of both pages' super-pixel counts, shrinks with the blank ones gone
    (two demo pages: 4.9 GB with them). Dropped once per page, before its factors are kept for
    its pairs."""
    kept = np.flatnonzero(np.any(factors.values != 0, axis=0))
    return dataclasses.replace(factors, values=factors.values[:, kept],
                               centres=factors.centres[kept])


class PixelPictures:
    """Pixel-level pictures of the matches of a corpus run, each page's factors computed once.

    ``picture(page_a, page_b)`` takes two ``(page_id, load_grey, analysis, linear_maps)`` and
    returns the picture (RGB uint8) and the conservation residual; the factors of the last
    ``keep`` pages stay in memory (100 x G float32 each, G the super-pixels that carry relevance).
    """

    def __init__(self, detector, head, cell: int = PIXEL_CELL, keep: int = 32):
        self.detector, self.head, self.cell, self.keep = detector, head, cell, keep
        self.pages: OrderedDict = OrderedDict()

    def picture(self, page_a: tuple, page_b: tuple) -> tuple[np.ndarray, float]:
        (factors_a, image_a), (factors_b, image_b) = self._page(*page_a), self._page(*page_b)
        explanation = pixel_pair(factors_a, page_a[3], factors_b, page_b[3])
        return pixel_picture_of(explanation, image_a, image_b), explanation.residual

    def _page(self, page_id: str, load: Callable[[], np.ndarray], analysis: PageAnalysis,
              _maps) -> tuple[PooledFactors, np.ndarray]:
        if page_id not in self.pages:
            self.pages[page_id] = page_pixel_factors(load(), analysis, self.detector, self.head,
                                                     self.cell)
            if len(self.pages) > self.keep:
                self.pages.popitem(last=False)
        self.pages.move_to_end(page_id)
        return self.pages[page_id]


def _zoom(image: np.ndarray) -> np.ndarray:
    return cv2.resize(image, None, fx=DISPLAY_ZOOM, fy=DISPLAY_ZOOM,
                      interpolation=cv2.INTER_CUBIC)
