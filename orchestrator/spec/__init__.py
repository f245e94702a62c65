"""Spec: a search space's YAML validated once into typed objects (its grid, recipes, search)."""
