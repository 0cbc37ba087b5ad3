"""Hyperparameter search on Ray Tune (``workbench tune``): the search space, the overlay of
sampled values on a config, the trial (an ordinary fit) and the sweep with its outputs."""
