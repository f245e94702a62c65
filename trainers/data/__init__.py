"""Data: GLUE tasks, their splits, tokens, batches and noise."""
