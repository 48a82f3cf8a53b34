"""Labelled digit patches shipped with the toolkit, and readers, writers and validators of
annotation files (patch sets, page-level number boxes, page-level digit boxes); importers of
label tool exports (:mod:`annotations.importers`) and the windows to label next
(:mod:`annotations.suggest`)."""

from annotations.formats import (
    AnnotationProblem,
    AnnotationSet,
    detect_format,
    load_annotations,
    read_box_csv,
    split_number_box,
    validate,
)
from annotations.patches import default_patch_set, make_patches
from annotations.writers import write_digit_boxes, write_number_boxes, write_patch_set

__all__ = [
    "AnnotationProblem", "AnnotationSet", "detect_format", "load_annotations", "read_box_csv",
    "split_number_box", "validate", "default_patch_set", "make_patches", "write_digit_boxes",
    "write_number_boxes", "write_patch_set",
]
