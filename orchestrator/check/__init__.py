"""Check: every user mistake found before anything starts (models, data, storage, artifacts)."""
