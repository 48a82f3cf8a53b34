"""``python -m sphaera_tables`` runs the ``tables`` command line."""

from sphaera_tables.cli import main

main(prog_name="tables")
