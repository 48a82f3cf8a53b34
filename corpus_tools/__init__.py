"""Corpus ingest, the synthetic corpus generator, historical networks and distributed execution.

Depends on neither the digit detector nor the explanation code.
"""
