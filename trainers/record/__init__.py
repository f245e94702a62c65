"""Record: what a trial leaves behind, in its folder and in its MLflow run."""
