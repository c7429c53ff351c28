-- Runs once, when the PostgreSQL volume is first created: MLflow's database is POSTGRES_DB (mlflow);
-- Optuna's studies and the MLflow server's accounts get their own.
CREATE DATABASE optuna;
CREATE DATABASE mlflow_auth;
