"""Commands of this package for the ``tables`` command line."""


def register(main, evaluate):
    """Add this package's commands to the ``tables`` group and its ``evaluate`` subgroup."""
