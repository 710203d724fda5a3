"""Warehouse area: the analytics views and the reader copy BI tools open."""
