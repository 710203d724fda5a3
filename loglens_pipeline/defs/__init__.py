"""Dagster wiring, one folder per area; the logic they call lives in plain modules."""
