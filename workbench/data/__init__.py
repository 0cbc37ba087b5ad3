"""Datasets on disk (writer, reader, manifest, exports) and data sources for training."""

from workbench.data.reader import Dataset, open_dataset, open_paired

__all__ = ["Dataset", "open_dataset", "open_paired"]
