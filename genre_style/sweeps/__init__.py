"""Hyperparameter sweeps: an Optuna (>= 4) sweeper for Hydra multirun, tracked in MLflow."""
