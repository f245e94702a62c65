"""``python -m orchestrator.report``: see :mod:`orchestrator.report.cli`."""

from __future__ import annotations

import sys

from orchestrator.report.cli import main

if __name__ == "__main__":
    sys.exit(main())
