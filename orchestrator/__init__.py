"""The sweep service: a search space in, Ray Tune trials out, MLflow runs, then the paper's tables.

The flow is spec → check → plan → run → (trials, in ``trainers/``) → tracking → report → serve,
and each step is a subpackage (docs/architecture.md draws the same tree)::

    sweep.py     python -m orchestrator.sweep: the command that walks the whole flow
    paths.py     where everything lands by default (results/)
    spec/        search_spaces/*.yaml → a typed SweepSpec: space.py (the schema), grid.py (a grid
                 block), recipes.py (named train:/data: values), search.py (distributions, the
                 search: block), schema_doc.py (docs/schema.md, printed from the schema)
    check/       every user mistake before anything starts: preflight.py (models, data, Ray
                 address, the store), storage.py (shared by every node?), artifacts.py (a stored
                 model is readable before a command loads it)
    plan/        trials with content keys, in topological stages: planner.py, studies.py (an
                 Optuna search's studies and their record), estimate.py (the dry run's time)
    run/         each stage's unfinished trials as one Tune run of Ray Train TorchTrainers:
                 stages.py, trainable.py (the Tune trial), local_ray.py, interrupts.py (Ctrl-C),
                 store_lock.py (one sweep per storage), asha.py and stopped.py (early stopping),
                 optuna_search.py (Tune's searcher)
    tracking/    MLflow, one experiment per sweep and one run per trial: store.py (the plumbing:
                 --tracking-uri, the store check, errors in one line), runs.py (created and mended
                 by the driver), names.py (run names and tags), provenance.py (context tags),
                 sweep_record.py (the parent run's space, plan and report)
    report/      runs → Tables 1–5, significance (Holm), plots, README (its __init__ maps it)
    serve/       registry.py (each configuration's best run → models:/…@best), predict.py (one
                 sentence, every model), model_costs.py (each model's int8 variant and the size and
                 latency its run recorded), demo.py (the same on a web page, through Ray Serve),
                 demo_batching.py (concurrent requests answered in batches), demo_rows.py (what a
                 row of the page and of POST /predict holds)

A trial crosses to ``trainers/`` as a typed ``trainers.runtime.payload.TrialPayload``; ``trainers/``
never imports this package. MLflow is written from both sides: the driver's plumbing here, and
what a trial's run holds by ``trainers/record/run_log.py`` (the driver calls it too, to adopt a
finished trial's folder).
"""
