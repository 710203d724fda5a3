"""Metrics area: one asset per YAML metric, the hourly schedule, late-data automation."""
