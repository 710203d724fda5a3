"""The DuckDB warehouse: its schema and how LogLens connects to it."""
