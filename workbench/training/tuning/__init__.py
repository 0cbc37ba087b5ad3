"""Hyperparameter search on Ray Tune (``workbench tune``): the search space, the overlay of
sampled values on a config, the trial (an ordinary fit) and the sweep with its outputs."""

# What a sweep folder holds (read by the app without importing Ray or Lightning).
SETTINGS = "tune.json"  # the sweep's identity: options and file hashes
TABLE = "trials.csv"
BEST = "best.yaml"
PLOT = "tune.png"
SUMMARY = "summary.json"
