"""``python -m orchestrator.report``: regenerate a sweep's report from MLflow.

    python -m orchestrator.report [--sweep NAME] [--tracking-uri URI] [--report-dir DIR]

Exit codes: 0 written; 2 bad input (unreachable, missing or broken store, unknown sweep, no
finished runs, a run's test predictions missing or unreadable), one line on stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from mlflow import MlflowClient

from orchestrator import paths
from orchestrator.report.build import ReportResult, build_report
from orchestrator.report.reader import resolve_sweep
from orchestrator.tracking.store import add_tracking_uri_option, check_store, store_errors
from orchestrator.tracking.sweep_record import log_report
from trainers.errors import UserError


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m orchestrator.report",
        description="Regenerate Tables 1-3, significance tests and plots of a sweep from MLflow.")
    parser.add_argument("--sweep", help="sweep (= MLflow experiment) name; default: the only one")
    add_tracking_uri_option(parser)
    parser.add_argument("--report-dir", type=Path,
                        help=f"where the report goes (default: {paths.shown(paths.DEFAULT_REPORTS)}/<sweep>; "
                             "the committed reports: results/<sweep>)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: 0 on success; 2 with one line on stderr for bad input."""
    args = parse_args(argv)
    try:
        check_store(args.tracking_uri, create=False)
        with store_errors(args.tracking_uri):
            client = MlflowClient(tracking_uri=args.tracking_uri)
            sweep = resolve_sweep(client, args.sweep)
            result = build_report(client, sweep, args.report_dir or paths.report_dir(sweep))
            log_report(client, sweep, result.out_dir)  # the sweep's parent run keeps the latest
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(summary_text(result))
    return 0


def summary_text(result: ReportResult) -> str:
    lines = [f"Report for sweep {result.sweep!r} written to {result.out_dir}:"]
    lines += [f"  {path.relative_to(result.out_dir)}" for path in result.files]
    lines += ["", result.table1_markdown]
    lines += [f"warning: {w}" for w in result.warnings]
    return "\n".join(lines)
