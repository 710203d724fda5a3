"""Anomalies area: one scoring asset per metric with its check, and the alert sensor and job."""
