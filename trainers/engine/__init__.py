"""Engine: the training loop of one trial and its optimizer steps, evaluation and arithmetic."""
