"""LogLens: log files to a DuckDB warehouse of events, metrics and anomalies, run by Dagster."""
