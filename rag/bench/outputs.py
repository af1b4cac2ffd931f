"""Every file a bench run writes from its summary: summary.json, the plots, report.md and
report.html (kept apart from the modules that render each, which never import each other)."""

from __future__ import annotations

import json
from pathlib import Path

from rag.bench.report import CURRENT_RECORDS, PER_QUESTION_F1, REPORT, SUMMARY, markdown


def write_outputs(summary: dict, out: Path) -> list[Path]:
    """summary.json, the plots, report.md (which shows the plots) and report.html in `out`.

    Takes the per-question scores and records out of `summary` (see PER_QUESTION_F1 and
    CURRENT_RECORDS), so it then equals summary.json.
    """
    from rag.bench.html import write_html
    from rag.bench.plots import write_plots

    plots = write_plots(summary, out, summary.pop(PER_QUESTION_F1, None) or {})
    records = summary.pop(CURRENT_RECORDS, None) or []
    (out / SUMMARY).write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    (out / REPORT).write_text(markdown(summary, [p.name for p in plots]), encoding="utf-8")
    page = write_html(summary, records, out, plots)
    return [out / SUMMARY, out / REPORT, page, *plots]
