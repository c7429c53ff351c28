"""Everything that talks to MLflow: the store (`store`), the training run's logger (`logger`), a sweep's parent run (`sweep_parent`)."""
