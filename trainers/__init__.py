"""The training of one trial, in plain PyTorch: what a Ray Train worker runs, and what the tests
and benchmarks run without Ray. It never imports ``orchestrator``. By concern::

    config.py    the hyper-parameter schema (TrainConfig), validated once in __post_init__
    errors.py    UserError, the one base class of every mistake a user can fix
    data/        tasks.py (the GLUE tasks), source.py (offline folder or hub), glue.py (loading and
                 the original work's splits), tokens.py, batches.py, noise.py, metrics.py
    models/      refs.py (what a space may write for a model), build.py (presets, checkpoints,
                 students cut from them), prune.py (heads and neurons removed by importance)
                 with pruned_bert.py (the saved type that reloads), quantize.py (the int8
                 variant), cost.py (size, latency, throughput), compressed.py (what every
                 finished model adds to its metrics), cost_names.py (their names, torch-free)
    methods/     registry.py (what the loop, planner, estimate and report know of a method), one
                 module per method (finetune.py, kd.py with pkd.py, metadistil.py, mutual.py)
                 and their maths (losses.py, objective.py, quiz.py)
    engine/      loop.py (one trial's epochs), update.py (optimizer steps), evaluate.py,
                 precision.py, rng.py
    runtime/     worker.py (the only Ray Train adapter), payload.py (what the driver hands a
                 trial), distributed.py (collectives), kernels.py (the CPU kernel pin)
    record/      layout.py (where storage keeps what), checkpoint.py, atomic.py, artifacts.py and
                 artifact_files.py (what a finished trial leaves), run_log.py and model_log.py (its
                 MLflow run and model)
"""
