"""Ingestion area: the `raw/events` asset, `log_file_sensor` and `ingest_job`."""
