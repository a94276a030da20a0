"""Experiment tracking: projects, runs, metric series, images, artifacts and checkpoints."""
