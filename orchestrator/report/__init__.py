"""The report: one sweep's MLflow runs → Tables 1–3, significance tests, plots and a README
(``python -m orchestrator.report``; ``orchestrator.sweep`` regenerates it after every sweep).

The modules, in the order the data flows through them:

- :mod:`~orchestrator.report.reader`: the sweep's FINISHED trial runs from MLflow (and those
  stopped early); pandas- and matplotlib-free, the one part predict and the demo import;
- :mod:`~orchestrator.report.labels`: a configuration's name (``KD BERT→DistilBERT + noise p=0.1``);
- :mod:`~orchestrator.report.predictions`: the runs' per-example test predictions (pandas);
- :mod:`~orchestrator.report.metrics`: the sweep's task and the metrics that score it, the main
  one first (SST-2: accuracy; MRPC: F1, then accuracy), which head the tables, tests and plots;
- :mod:`~orchestrator.report.tables`: the rows of Tables 1–3 and each row's numbers, the
  original work's beside them in paper sweeps;
- :mod:`~orchestrator.report.significance`: paired bootstrap (of the main metric) and McNemar
  tests against the fine-tuned student and KD;
- :mod:`~orchestrator.report.render`: the tables as Markdown, CSV and LaTeX, and ``runs.csv``;
- :mod:`~orchestrator.report.significance_table`: the significance tests as the same three;
- :mod:`~orchestrator.report.search`: a random search's ranking: each configuration's samples,
  best first (the tables show the best), and the runs the scheduler stopped;
- :mod:`~orchestrator.report.plots`: the main metric vs. parameters and on validation per epoch,
  the main metric on validation against each searched value;
- :mod:`~orchestrator.report.cost_table`: "size and speed", each configuration's model and its
  int8 variant: score, Δ int8 − fp32 paired on the same examples, size, latency, throughput;
- :mod:`~orchestrator.report.frontier`: the Pareto front of score against cost (a pure function)
  and its plot;
- :mod:`~orchestrator.report.cost_section`: the table's files, the plot and the README's section;
- :mod:`~orchestrator.report.best_space`: the space files that re-run a search's best over
  more seeds;
- :mod:`~orchestrator.report.search_section`: the search section (``search.md``/``.csv``, its
  plots, the re-run commands);
- :mod:`~orchestrator.report.readme`: ``results/<sweep>/README.md``;
- :mod:`~orchestrator.report.build`: :func:`build_report`, all of the above into one folder;
- :mod:`~orchestrator.report.cli`: the command line (``__main__`` runs it).

The store itself (``--tracking-uri``, its checks, redaction, paged searches) is
:mod:`orchestrator.tracking.store`. This file imports nothing: importing the reader for predict or
the demo runs it too, and must not load pandas and matplotlib.
"""
