"""Tracking: the sweep in MLflow, one experiment per sweep and one run per trial."""
