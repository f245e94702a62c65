"""Runtime: the Ray Train worker, the typed payload it gets, and its processes' collectives."""
