"""Serve: the best models in MLflow's registry, one sentence answered by every model."""
