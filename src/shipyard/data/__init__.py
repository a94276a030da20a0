"""Datasets: named, immutable, content-addressed versions of folders, with lineage into runs."""
