-- Runs once, when the PostgreSQL volume is first created: MLflow's database is POSTGRES_DB (mlflow);
-- Optuna's studies get their own.
CREATE DATABASE optuna;
