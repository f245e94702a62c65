"""The sweep service: a search space in, Ray Tune trials out, MLflow runs, then the paper's tables.

The flow, spec → check → plan → stages → trials → MLflow → report → registry → serve, and the
modules that own each step (``trainers/`` is the training itself; it never imports this package;
docs/architecture.md's "Where each step lives" table is this map)::

    spec       search_spaces/*.yaml → SweepSpec                      spec.py, grid.py (a grid
                                                                     block), recipes.py (named
                 (its train:/data:/models: sections and its grid's   train:/data: values),
                 values are trainers.config's)                       search.py (distributions,
                                                                     the search: block)
    check      every user mistake before anything starts             preflight.py, storage.py,
                 (models, data, storage, Ray address, the store)     mlflow_store.check_store
    plan       a graph of trials with content keys, in topological   plan.py, studies.py (an
                 stages (a teacher assistant's student after it)
                                                                     Optuna search's studies and
                                                                     their record), estimate.py
                                                                     (the dry run's time and
                                                                     critical path)
    stages     each stage's unfinished trials as one Tune run        sweep.py (the command),
                 of Ray Train TorchTrainers                          local_ray.py, stages.py,
                                                                     trainable.py, interrupts.py,
                                                                     asha.py and stopped.py
                                                                     (early stopping),
                                                                     optuna_search.py (Tune's
                                                                     searcher)
    trials     trainers.payload.TrialPayload → trainers/worker.py    (in trainers/; a method's
                 → the loop → the method's step, from the registry   step, cost and names:
                                                                     trainers/methods.py)
                 → the folder under --storage, trainers.layout
    MLflow     one experiment per sweep, one run per trial           runs.py (created and mended
                 (its student an MLflow model: trainers/model_log;   by the driver), tracking.py
                 what a run holds: trainers/run_log)                 (names and tags),
                                                                     provenance.py (context tags),
                                                                     sweep_record.py (the parent
                                                                     run's space, plan, report),
                                                                     mlflow_store.py (plumbing)
    report     runs → Tables 1–4, significance (Holm), plots, README report/ (reader … build, cli),
                                                                     stats.py
    registry   each configuration's best run → models:/…@best       registry.py
    serve      one sentence, every model                             predict.py, demo.py

``paths.py`` says where everything lands by default (``results/``).

MLflow is reached from two sides. The driver's plumbing is ``mlflow_store.py`` (the one
``--tracking-uri``, redaction, the store check, its errors in one line, the sweep listing, the
parent run, paging); what a trial's run holds is written by ``trainers/run_log.py``, the worker's
side, since ``trainers/`` never imports this package (the driver calls it too, to adopt a finished
trial's folder).
"""
