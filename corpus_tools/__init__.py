"""Corpus ingest, the synthetic corpus generator, historical networks and distributed execution.

Depends on neither the detector's model nor the explanation code; page images are read by
``digit_detector.page``.
"""
