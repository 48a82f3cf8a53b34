"""Everything the corpus run keeps of one page: bigram counts and their explanation factors.

``analyse_page`` runs the detector, the bigram head and one backward pass of the head for all
100 bigram dimensions at once (:meth:`~sphaera_tables.bigram.BigramPairs.pixel_relevance`), and
pools the relevance of every bigram dimension onto the page's detected digits. The result is
small (100 counts, a 100 x (G + 1) factor matrix, the digit table) and is cached per page, so
that explaining any pair later is one matrix product (BiLRP factorisation, method.md section 2).

Where the factors are taken: on the detector's 10 digit maps, restricted to the active pixels
(the only ones the head looks at). Through the head, relevance is exact gradient x input
(winner-take-all on min and max, a conservative threshold gate). The detector is local (its
receptive field is about one digit), so relevance that lands on a map pixel next to a detected
digit belongs to that digit's ink; pooling on the maps equals pooling the pixel-level LRP maps in
total (the detector's gamma rule conserves). ``tables explain`` renders the full pixel-level
explanation of a single pair when a historian wants to see the ink itself.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from digit_detector.inference import DIGIT_COLUMNS, detect
from digit_detector.model import DetectorConfig, DigitDetector
from sphaera_tables.bigram import BigramHead, bigram_offsets, blob_unit
from sphaera_tables.cells import CellOccurrences, cell_occurrences
from sphaera_tables.explain import Factors, pool
from sphaera_tables.numbers import ReadingFrame, group_numbers, number_table, row_summary

STORED_DIGIT_COLUMNS = [*DIGIT_COLUMNS, "number"]
BLOB_PEAK = 1.0
"""Value of a detector target blob at a digit centre (digit_detector.targets)."""


@dataclass(frozen=True)
class FeatureConfig:
    """Settings of the bigram features (all relative to the detector's working scale).

    Attributes
    ----------
    shift_factors : how far right "the next digit" is looked for, in digit pitches.
    rise_factors : how far down (or up, negative) it is looked for, in digit heights, for
        old-style figures (:mod:`sphaera_tables.bigram`). A quarter height (2 px) up, level and
        down raised retrieval mAP on 100 held-out-typeface development pages from 0.811 (level
        only, the paper's shifts) to 0.827 (1 px: 0.820; 1 and 2 px: 0.828).
    threshold : map activation (fraction of the detector's blob peak) below which nothing
        counts; must exceed the overlap of a blob with itself at the smallest offset, or every
        lone digit would count as a double ("11", "22", ...). 0.2 rather than 0.3 or 0.45
        raised retrieval mAP on 500 held-out-typeface pages from 0.584 (0.3) and 0.503 (0.45)
        to 0.615: faint but real digits count.
    link_radius : active pixels farther than this many digit heights from every detected
        digit are pooled into a last "not at a detected digit" group.
    """

    shift_factors: tuple[float, ...] = (0.875, 1.0, 1.125)
    rise_factors: tuple[float, ...] = (-0.25, 0.0, 0.25)
    threshold: float = 0.2
    link_radius: float = 1.0

    def head(self, detector: DetectorConfig) -> BigramHead:
        """The bigram head for a detector's working scale and blob shape."""
        offsets = bigram_offsets(detector.digit_pitch_px, detector.digit_height_px,
                                 self.shift_factors, self.rise_factors)
        sigma, peak = detector.blob_sigma_px, BLOB_PEAK
        threshold = self.threshold * peak
        nearest = min(np.hypot(dx, dy) for dx, dy in offsets)
        self_overlap = peak * np.exp(-((nearest / 2) ** 2) / (2 * sigma**2))
        if threshold <= self_overlap:
            raise ValueError(
                f"bigram threshold {self.threshold} of the blob peak is below a blob's overlap "
                f"with itself at offset {nearest:.1f} px ({self_overlap / peak:.2f}): raise it"
            )
        return BigramHead(offsets, threshold, blob_unit(peak, sigma, threshold))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class PageAnalysis:
    """What the corpus run keeps of one page.

    Attributes
    ----------
    phi : (100,) bigram counts (index ``10 * j + k`` for "digit j then digit k").
    factors : (100, G + 1) relevance of each ``phi_m`` pooled onto the G printed numbers
        (detected digits grouped, :mod:`sphaera_tables.numbers`), the last column holding what
        lies at no detected digit; each row sums to ``phi_m``.
    digits : detected digits, columns ``x, y, digit, score, x0, y0, x1, y1`` (page px) and
        ``number`` (index of the number the digit belongs to).
    page_shape : (height, width) of the page image, px.
    scale : working px per page px; ``rotation``: degrees the page was turned to be upright.
    pitch, height : the detector's digit pitch and height at the working scale, px.
    """

    phi: np.ndarray
    factors: np.ndarray
    digits: pd.DataFrame
    page_shape: tuple[int, int]
    scale: float
    rotation: int
    pitch: float
    height: float

    @property
    def frame(self) -> ReadingFrame:
        """How the page's digits are read upright."""
        return ReadingFrame(self.page_shape, self.scale, self.rotation, self.pitch, self.height)

    @functools.cached_property
    def numbers(self) -> pd.DataFrame:
        """The printed numbers (factor columns), :func:`~sphaera_tables.numbers.number_table`."""
        return number_table(self.digits, self.digits["number"].to_numpy(), self.frame)

    @functools.cached_property
    def rows(self) -> pd.DataFrame:
        """The printed rows, :func:`~sphaera_tables.numbers.row_summary`."""
        return row_summary(self.numbers)

    @functools.cached_property
    def cells(self) -> CellOccurrences:
        """The page's cell features (:mod:`sphaera_tables.cells`), anchored on its numbers."""
        return cell_occurrences(self.numbers, self.frame)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays for ``numpy.savez`` (no pickled objects)."""
        return {
            "phi": self.phi,
            "factors": self.factors,
            "digits": self.digits[STORED_DIGIT_COLUMNS].to_numpy(np.float64),
            "page_shape": np.asarray(self.page_shape, dtype=np.int64),
            "scale": np.asarray(self.scale, dtype=np.float64),
            "rotation": np.asarray(self.rotation, dtype=np.int64),
            "digit_size": np.asarray([self.pitch, self.height], dtype=np.float64),
        }

    @classmethod
    def from_arrays(cls, arrays) -> PageAnalysis:
        digits = pd.DataFrame(
            np.asarray(arrays["digits"]).reshape(-1, len(STORED_DIGIT_COLUMNS)),
            columns=STORED_DIGIT_COLUMNS,
        ).astype({"digit": np.int64, "number": np.int64})
        return cls(
            phi=np.asarray(arrays["phi"]),
            factors=np.asarray(arrays["factors"]),
            digits=digits,
            page_shape=tuple(int(v) for v in arrays["page_shape"]),
            scale=float(arrays["scale"]),
            rotation=int(arrays["rotation"]),
            pitch=float(arrays["digit_size"][0]),
            height=float(arrays["digit_size"][1]),
        )


def analyse_page(grey: np.ndarray, detector: DigitDetector, config: FeatureConfig) -> PageAnalysis:
    """Detect digits, count bigrams and pool their relevance onto the printed numbers.

    Parameters
    ----------
    grey : uint8 (H, W) page image, ink dark.
    detector : the digit detector; ``config`` the bigram settings.
    """
    detection = detect(grey, detector)
    prepared = detection.prepared
    frame = ReadingFrame(tuple(grey.shape), float(prepared.scale), int(prepared.rotation),
                         detector.config.digit_pitch_px, detector.config.digit_height_px)
    digits = detection.digits.assign(number=group_numbers(detection.digits, frame))
    head = config.head(detector.config)
    maps = detection.maps[None]
    active = head.active_pixels(maps)
    labels = _nearest_number_labels(active, prepared, digits, config, detector.config)
    values = active.gather(maps).double()  # the head in float64, at the active pixels only
    phi, relevance = head.pairs_model(active).pixel_relevance(values)
    pooled = pool(Factors(values=relevance.numpy(), phi=phi.numpy()), labels)
    factors = np.zeros((len(phi), n_numbers(digits) + 1))
    factors[:, : pooled.values.shape[1]] = pooled.values
    return PageAnalysis(
        phi=phi.numpy().astype(np.float64),
        factors=factors,
        digits=digits,
        page_shape=tuple(grey.shape),
        scale=float(prepared.scale),
        rotation=int(prepared.rotation),
        pitch=frame.pitch,
        height=frame.height,
    )


def n_numbers(digits: pd.DataFrame) -> int:
    return int(digits["number"].max()) + 1 if len(digits) else 0


def _nearest_number_labels(active, prepared, digits, config, detector_config) -> np.ndarray:
    """Group of every active pixel (and of the trailing zero column): the number of its nearest
    detected digit within ``link_radius`` digit heights, else the extra last group."""
    elsewhere = n_numbers(digits)
    labels = np.full(active.count + 1, elsewhere, dtype=np.int64)
    if len(digits) == 0 or active.count == 0:
        return labels
    xs, ys = active.coordinates()
    page_x, page_y = prepared.to_page_coords(xs.numpy(), ys.numpy())
    radius = config.link_radius * detector_config.digit_height_px / prepared.scale
    distance, nearest = cKDTree(digits[["x", "y"]].to_numpy()).query(
        np.column_stack([page_x, page_y]), distance_upper_bound=radius
    )
    found = np.isfinite(distance)
    labels[: active.count][found] = digits["number"].to_numpy()[nearest[found]]
    return labels
