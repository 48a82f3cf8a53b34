"""Gaussian-blob digit detector: model, targets, training, page inference, evaluation, weights.

Typical use::

    from digit_detector import detect, load_detector
    detection = detect("page.jpg", load_detector())
    detection.digits          # DataFrame: x, y, digit, score, x0, y0, x1, y1 (page px)
"""

from digit_detector.inference import Detection, detect, digit_maps, find_digits
from digit_detector.model import DetectorConfig, DigitDetector
from digit_detector.page import PageReadError, load_page
from digit_detector.prepare import PreparedPage, prepare_page
from digit_detector.weights import WeightFileError, load_detector, save_detector

__all__ = [
    "Detection",
    "DetectorConfig",
    "DigitDetector",
    "PageReadError",
    "PreparedPage",
    "WeightFileError",
    "detect",
    "digit_maps",
    "find_digits",
    "load_detector",
    "load_page",
    "prepare_page",
    "save_detector",
]
