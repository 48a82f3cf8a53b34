"""Find and prove similarity between historical numeric tables.

The product package: the bigram network on top of the digit detector, corpus-wide similarity,
BiLRP explanations of every match, the results folder and the ``tables`` command line.
"""

__version__ = "0.1.0"
