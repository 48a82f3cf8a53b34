"""The ``tables`` command line: one group, commands contributed by each package.

Each package keeps its commands next to its code (``annotations.cli``, ``corpus_tools.cli``,
``digit_detector.cli``, ``sphaera_tables.commands``) and exposes ``register(main, evaluate)``,
which adds them here.
"""

import click

from sphaera_tables import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tables")
def main():
    """Find and prove similarity between scanned early-modern numeric tables.

    Start with `tables demo` to see the whole pipeline on a built-in synthetic corpus.
    """


@main.group()
def evaluate():
    """Score detections, matches or explanations against ground truth."""


def _register_all():
    from annotations import cli as annotations_cli
    from corpus_tools import cli as corpus_cli
    from digit_detector import cli as detector_cli
    from sphaera_tables import commands
    from sphaera_tables.review_command import review_command, verdicts_command

    for module in (annotations_cli, corpus_cli, detector_cli, commands):
        module.register(main, evaluate)
    main.add_command(review_command)
    main.add_command(verdicts_command)


_register_all()
