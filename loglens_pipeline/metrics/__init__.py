"""Metric declarations: parsing and compiling analyst-written metric expressions."""
