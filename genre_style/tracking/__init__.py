"""MLflow logging, run artifacts and plots."""
