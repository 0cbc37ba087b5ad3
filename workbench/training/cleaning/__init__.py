"""Label-error detection (``workbench clean``): out-of-sample probabilities by K-fold
cross-fitting through the Lightning trainer and config, the rankings (confident learning with
cleanlab, loss, ensemble disagreement) and the files a cleaning run writes."""

# What a cleaning folder holds (read by the app and by sources through ``exclude:``).
SETTINGS = "clean.json"  # the cross-fitting's identity: resolved config, folds, members, seed
SUSPECTS = "suspects.csv"
EXCLUDE = "exclude.json"
REPORT = "report.json"
FOLDS = "folds"  # one saved unit per fold and member
