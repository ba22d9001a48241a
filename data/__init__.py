"""Datasets and inputs: bundled datasets, the user's own data, label matching, image and text validation."""

from data.dataset import Dataset, DatasetError
from data.datasets import list_datasets, load_dataset
from data.inputs import InputError, check_text, load_image
from data.labels import LabelMatch, match_labels

__all__ = [
    "Dataset",
    "DatasetError",
    "LabelMatch",
    "list_datasets",
    "load_dataset",
    "match_labels",
    "InputError",
    "load_image",
    "check_text",
]
