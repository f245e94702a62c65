"""Run: each stage's trials as one Ray Tune run of Ray Train trainers, on a local Ray or a cluster."""
