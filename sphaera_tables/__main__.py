"""``python -m sphaera_tables`` runs the ``tables`` command line."""

from sphaera_tables.cli import main

if __name__ == "__main__":  # not when a worker process starts from this module
    main(prog_name="tables")
