"""Ingestion: which files a source watches, their identity, reading new bytes, parsing, committing."""
