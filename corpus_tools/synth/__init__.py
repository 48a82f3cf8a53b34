"""Synthetic corpus of scanned-looking early-modern astronomical tables with full ground truth.

``generate_corpus(out_dir, pages=200, seed=0)`` writes page images, ``metadata.csv`` and
``truth/{pages,tables,digits}.csv``; ``tables synth DIR`` does the same from the command line.
Modules: ``astronomy`` (the numbers), ``editions`` (books and copying), ``typefaces`` (fonts
with old-style figures, TRAIN / HELDOUT split), ``vocabulary`` (headers and prose words),
``canvas`` and ``pages`` (typesetting, with a box for every digit), ``degrade`` (print and
scan), ``corpus`` (writing the folder).
"""

from corpus_tools.synth.corpus import generate_corpus
from corpus_tools.synth.typefaces import ALL_TYPEFACES, HELDOUT_TYPEFACES, TRAIN_TYPEFACES

__all__ = ["generate_corpus", "TRAIN_TYPEFACES", "HELDOUT_TYPEFACES", "ALL_TYPEFACES"]
