"""Methods: the registry of training methods, one module each, and the maths they share."""
