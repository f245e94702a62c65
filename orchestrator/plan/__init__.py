"""Plan: a validated space into a graph of trials with content keys, in stages, and its estimate."""
