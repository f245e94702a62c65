"""Models: building, cutting, quantizing and costing the models a trial trains and serves."""
