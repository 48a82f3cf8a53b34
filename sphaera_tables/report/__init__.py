"""The offline HTML review report of a results folder (``OUT/report.html``).

    from sphaera_tables.report import build_report
    build_report("results")          # -> Path("results/report.html")
"""

from sphaera_tables.report.builder import (
    build_report,
    handle_url,
    report_context,
    version_warnings,
)

__all__ = ["build_report", "handle_url", "report_context", "version_warnings"]
