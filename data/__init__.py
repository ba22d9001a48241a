"""Datasets and inputs: bundled datasets, image and text loading and validation."""
from data.datasets import Dataset, list_datasets, load_dataset
from data.inputs import InputError, load_image, check_text

__all__ = ["Dataset", "list_datasets", "load_dataset", "InputError", "load_image", "check_text"]
