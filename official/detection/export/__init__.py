"""Exporting trained detectors for serving."""
