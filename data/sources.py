"""The user's own data: an image folder, a table file, or a Hugging Face `datasets` dataset, as a lazy Dataset.

Listing a source reads file names, sizes and image headers, never pixels: images are decoded when a batch
asks for them (`LazySequence`), so memory stays bounded by the batch. Files that cannot be used (empty, not an
image, unreadable header, too many pixels) are skipped and named in `Dataset.problems`; a source with nothing
usable raises one `DatasetError`.

Layouts (see `load_source`):
- image folder: `root/<class>/**/*.png|jpg|...` (torchvision's ImageFolder: labelled), or images directly
  in `root` (unlabelled); split folders `root/train|val|validation|test/` give splits; masks (same relative
  name, any image format) in `masks=` or a `masks/` folder beside the class folders;
- table (.csv, .tsv, .jsonl, .parquet): a text column or an image-path column (relative to the file), and an
  optional label column (names or integers), found by name or given;
- `datasets`: a folder written by `save_to_disk` (Dataset or DatasetDict), or a hub id in the local cache;
  image, text, label (ClassLabel) and mask columns are found from the features.
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from data.dataset import Dataset, LazySequence
from data.inputs import MAX_IMAGE_PIXELS, InputError, as_displayed, load_image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")
TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".parquet")
SPLIT_NAMES = ("train", "val", "validation", "test")
PREFERRED_SPLITS = ("test", "validation", "val")  # the default split of a user source, when it has several
MASKS_FOLDER = "masks"
TEXT_COLUMNS = ("text", "sentence", "sentences", "content")
IMAGE_COLUMNS = ("image", "img", "path", "image_path", "file", "filename")
LABEL_COLUMNS = ("label", "labels", "class", "category")
MASK_COLUMNS = ("mask", "masks", "segmentation")
ONE_SPLIT = "all"


class DatasetError(ValueError):
    """A dataset source that cannot be used; the message says what was tried and what to do."""


# -- files ------------------------------------------------------------------------------------------------
def read_image(path: str) -> Image.Image:
    """Decode one image file into an RGB or L PIL image, or raise DatasetError naming the file."""
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise DatasetError(f"{path} cannot be read ({e.strerror or e}). Check that the file is still there.") from e
    try:
        return load_image(raw, path)
    except InputError as e:
        raise DatasetError(f"{e} Remove or replace the file and open the dataset again.") from e


def read_mask(path: str) -> np.ndarray:
    """One mask image -> bool [H, W] of object pixels (above half the mask's maximum, so 0/1 and 0/255 work)."""
    a = np.asarray(read_image(path).convert("L"))
    return a > (a.max() / 2) if a.max() > 0 else np.zeros(a.shape, dtype=bool)


def probe_image(path: str, size: int | None = None) -> str | None:
    """Why an image file cannot be used (from its size and header only; no pixels are decoded), or None."""
    if size is None:
        try:
            size = os.stat(path).st_size
        except OSError:
            return "file not found"
    if size == 0:
        return "empty file (0 bytes)"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return f"too large to decode safely (over {MAX_IMAGE_PIXELS / 1e6:.0f} MP)"
    except UnidentifiedImageError:
        return "not an image format Pillow can read"
    except (OSError, SyntaxError, ValueError) as e:
        return f"unreadable ({e})"
    if w * h > MAX_IMAGE_PIXELS:
        return f"too large to decode safely ({w}x{h}, over {MAX_IMAGE_PIXELS / 1e6:.0f} MP)"
    return None


def _fingerprint(*parts) -> str:
    return hashlib.sha1(repr(parts).encode()).hexdigest()[:16]


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def _walk(root: Path) -> list[os.DirEntry]:
    """Every non-hidden file under root (recursively), sorted by relative path."""
    out, stack = [], [root]
    while stack:
        with os.scandir(stack.pop()) as it:
            for e in it:
                if e.name.startswith("."):
                    continue
                if e.is_dir():
                    stack.append(Path(e.path))
                elif e.is_file():
                    out.append(e)
    return sorted(out, key=lambda e: e.path)


# -- image folders ---------------------------------------------------------------------------------------
def folder_splits(root: Path) -> list[str]:
    """The split folders of an image folder (train/val/validation/test that hold images), or [ONE_SPLIT]."""
    found = [s for s in SPLIT_NAMES if (root / s).is_dir()]
    return found or [ONE_SPLIT]


def _image_folder(root: Path, split: str, masks: str | Path | None):
    """(inputs, labels, class_names, names, masks, problems, fingerprint) of one split of an image folder."""
    base = root if split == ONE_SPLIT else root / split
    subdirs = sorted(
        p.name for p in os.scandir(base) if p.is_dir() and not p.name.startswith(".") and p.name != MASKS_FOLDER
    )
    classes = [d for d in subdirs if any(_is_image(e.name) for e in _walk(base / d))]
    problems, files, labels = [], [], []
    if classes:
        for c, d in enumerate(classes):
            for e in _walk(base / d):
                files.append((e, c))
        for e in os.scandir(base):
            if e.is_file() and not e.name.startswith(".") and _is_image(e.name):
                problems.append((e.path, "not inside a class folder; ignored"))
    else:
        files = [
            (e, -1)
            for e in sorted(os.scandir(base), key=lambda e: e.name)
            if e.is_file() and not e.name.startswith(".")
        ]
    kept, stats = [], []
    for e, c in files:
        st = e.stat()
        reason = None if _is_image(e.name) else f"not an image file ({Path(e.name).suffix or 'no extension'})"
        reason = reason or probe_image(e.path, st.st_size)
        if reason:
            problems.append((e.path, reason))
            continue
        kept.append(e.path)
        labels.append(c)
        stats.append((os.path.relpath(e.path, base), st.st_size, st.st_mtime_ns))
    if not kept:
        raise DatasetError(
            f"No usable images in {base}: expected class sub-folders of images "
            f"(<root>/<class>/*.png|jpg|...) or image files directly in the folder"
            + (
                f"; {len(problems)} file(s) were skipped: " + "; ".join(f"{Path(p).name}: {r}" for p, r in problems[:5])
                if problems
                else ""
            )
            + "."
        )
    names = [os.path.relpath(p, base) for p in kept]
    mask_seq, mask_problems = _folder_masks(base, names, masks)
    problems += mask_problems
    return (
        LazySequence(read_image, kept),
        np.asarray(labels, dtype=np.int64),
        classes,
        names,
        mask_seq,
        problems,
        _fingerprint(str(base), stats, str(masks)),
    )


def _folder_masks(base: Path, names: list[str], masks: str | Path | None):
    """Masks for the images `names` (relative to base): same relative path without extension, else same stem."""
    folder = Path(masks).expanduser() if masks else base / MASKS_FOLDER
    if not folder.is_dir():
        if masks:
            raise DatasetError(f"The masks folder {folder} does not exist.")
        return None, []
    by_rel: dict[str, str] = {}
    by_stem: dict[str, str] = {}
    for e in _walk(folder):
        if _is_image(e.name):
            rel = os.path.splitext(os.path.relpath(e.path, folder))[0]
            by_rel[rel] = e.path
            by_stem.setdefault(Path(e.name).stem, e.path)
    found = [by_rel.get(os.path.splitext(n)[0]) or by_stem.get(Path(n).stem) for n in names]
    missing = [n for n, f in zip(names, found) if f is None]
    if missing:
        return None, [
            (str(folder), f"{len(missing)} of {len(names)} images have no mask (e.g. {missing[0]}); masks not used")
        ]
    return LazySequence(read_mask, found), []


# -- tables ----------------------------------------------------------------------------------------------
def _read_table(path: Path):
    import pandas as pd

    readers = {
        ".csv": lambda: pd.read_csv(path),
        ".tsv": lambda: pd.read_csv(path, sep="\t"),
        ".jsonl": lambda: pd.read_json(path, lines=True),
        ".parquet": lambda: pd.read_parquet(path),
    }
    try:
        return readers[path.suffix.lower()]()
    except Exception as e:  # pandas/pyarrow raise many types for a malformed file
        raise DatasetError(
            f"{path} could not be read as {path.suffix.lstrip('.').upper()} ({type(e).__name__}: {str(e)[:200]})."
        ) from e


def _column(columns, given: str | None, candidates: Sequence[str], what: str, path) -> str | None:
    if given is not None:
        if given not in columns:
            raise DatasetError(
                f"{path} has no {what} column {given!r}; its columns are: {', '.join(map(str, columns))}."
            )
        return given
    lower = {str(c).lower(): c for c in columns}
    return next((lower[c] for c in candidates if c in lower), None)


def _labels_from_values(values) -> tuple[np.ndarray, list[str]]:
    """Label values (names or integers, missing allowed) -> (labels [N] with -1 for missing, class names)."""
    import pandas as pd

    s = pd.Series(values)
    present = s.notna()
    if not present.any():
        return np.full(len(s), -1, dtype=np.int64), []
    numeric = pd.to_numeric(s[present], errors="coerce")
    if numeric.notna().all() and (numeric % 1 == 0).all() and (numeric >= 0).all():
        ids = np.full(len(s), -1, dtype=np.int64)
        ids[present.to_numpy()] = numeric.astype(np.int64).to_numpy()
        return ids, [str(i) for i in range(int(ids.max()) + 1)]
    names = sorted(s[present].astype(str).unique())
    index = {n: i for i, n in enumerate(names)}
    return np.asarray([index[str(v)] if ok else -1 for v, ok in zip(s, present)], dtype=np.int64), names


def _table(path: Path, text_column, image_column, label_column):
    """(modality, inputs, labels, class_names, names, problems, fingerprint) of a table file."""
    df = _read_table(path)
    if df.empty:
        raise DatasetError(f"{path} has no rows.")
    text = _column(df.columns, text_column, TEXT_COLUMNS, "text", path) if image_column is None else None
    image = _column(df.columns, image_column, IMAGE_COLUMNS, "image", path) if text_column is None else None
    if text is not None and image is not None:
        image = image if image_column is not None else None
        text = None if image is not None else text
    label = _column(df.columns, label_column, LABEL_COLUMNS, "label", path)
    if text is None and image is None:
        raise DatasetError(
            f"{path} has no text or image column: name one 'text' or 'sentence' (texts) or 'image' "
            f"or 'path' (image files), or pass text_column= / image_column=. Its columns are: "
            f"{', '.join(map(str, df.columns))}."
        )
    labels, classes = (
        _labels_from_values(df[label].to_numpy()) if label is not None else (np.full(len(df), -1, dtype=np.int64), [])
    )
    problems, keep = [], []
    inputs: Sequence
    if text is not None:
        values = df[text]
        for i, v in enumerate(values):
            if isinstance(v, str) and v.strip():
                keep.append(i)
            else:
                problems.append((f"{path.name} row {i}", "empty or missing text"))
        inputs = [values.iloc[i].strip() for i in keep]
        modality = "text"
    else:
        paths = []
        for i, v in enumerate(df[image]):
            p = (path.parent / str(v)).expanduser() if isinstance(v, str) and v.strip() else None
            reason = "no image path" if p is None else probe_image(str(p))
            if reason:
                problems.append((str(p) if p else f"{path.name} row {i}", reason))
            else:
                keep.append(i)
                paths.append(str(p))
        inputs = LazySequence(read_image, paths)
        modality = "image"
    if not keep:
        raise DatasetError(f"{path} has no usable rows: " + "; ".join(f"{p}: {r}" for p, r in problems[:5]) + ".")
    names = [f"row {i}" if text is not None else str(df[image].iloc[i]) for i in keep]
    st = path.stat()
    return (
        modality,
        inputs,
        labels[keep],
        classes,
        names,
        problems,
        _fingerprint(str(path), st.st_size, st.st_mtime_ns, text, image, label),
    )


# -- Hugging Face datasets -------------------------------------------------------------------------------
def is_saved_hf_dataset(path: Path) -> bool:
    """A folder written by `datasets`' save_to_disk (a Dataset or a DatasetDict)."""
    return (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists()


def _open_hf(source: str, path: Path | None):
    """A datasets.Dataset or DatasetDict from disk (path) or the hub cache (source is a hub id)."""
    import datasets

    if path is not None:
        try:
            return datasets.load_from_disk(str(path))
        except Exception as e:  # noqa: BLE001 - datasets raises many types for a damaged folder
            raise DatasetError(
                f"{path} looks like a `datasets` folder but could not be opened ({type(e).__name__}: {str(e)[:200]})."
            ) from e
    try:
        return datasets.load_dataset(source)
    except Exception as e:  # noqa: BLE001 - offline, not cached, private, or not a dataset at all
        offline = datasets.config.HF_HUB_OFFLINE
        raise DatasetError(
            f"{source!r} is not a bundled dataset, a file or a folder, and could not be loaded as a Hugging Face "
            f"dataset ({type(e).__name__})"
            + (
                ": HeadScope is offline (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE) and "
                "this hub id is not in your datasets cache. Download it once with "
                "network, or save it with save_to_disk and open the folder."
                if offline
                else "."
            )
        ) from e


def hf_splits(obj) -> list[str]:
    return list(obj.keys()) if hasattr(obj, "keys") else [ONE_SPLIT]


def _hf_item(ds, column: str, convert: Callable, i: int):
    try:
        return convert(ds[int(i)][column])
    except DatasetError:
        raise
    except Exception as e:  # noqa: BLE001 - a damaged image cell
        raise DatasetError(f"Row {i} of the dataset could not be decoded ({type(e).__name__}: {e}).") from e


def _hf_image(value) -> Image.Image:
    w, h = value.size
    if w * h > MAX_IMAGE_PIXELS:
        raise DatasetError(f"An image of {w}x{h} pixels is too large to decode safely.")
    return as_displayed(value)


def _hf_mask(value) -> np.ndarray:
    a = np.asarray(value.convert("L"))
    return a > (a.max() / 2) if a.max() > 0 else np.zeros(a.shape, dtype=bool)


def _hf(ds, source: str, text_column, image_column, label_column):
    """(modality, inputs, labels, class_names, names, masks, fingerprint) of one datasets.Dataset split."""
    import datasets

    feats = ds.features
    kinds = {name: type(f).__name__ for name, f in feats.items()}
    images = [n for n, k in kinds.items() if k == "Image"]
    masks = [n for n in images if n.lower() in MASK_COLUMNS]
    images = [n for n in images if n not in masks]
    strings = [n for n, f in feats.items() if isinstance(f, datasets.Value) and f.dtype in ("string", "large_string")]
    image = image_column or (images[0] if images and text_column is None else None)
    text = (
        None
        if image
        else (text_column or _column(strings, None, TEXT_COLUMNS, "text", source) or (strings[0] if strings else None))
    )
    if image is None and text is None:
        raise DatasetError(
            f"{source} has no image or text column: its features are "
            + ", ".join(f"{n} ({k})" for n, k in kinds.items())
            + "."
        )
    for col in (image, text, label_column):
        if col is not None and col not in feats:
            raise DatasetError(f"{source} has no column {col!r}; its columns are: {', '.join(feats)}.")
    label = (
        label_column
        or next((n for n, k in kinds.items() if k == "ClassLabel"), None)
        or _column(list(feats), None, LABEL_COLUMNS, "label", source)
    )
    if label is None:
        labels, classes = np.full(len(ds), -1, dtype=np.int64), []
    elif kinds[label] == "ClassLabel":
        labels, classes = np.asarray(ds[label], dtype=np.int64), list(feats[label].names)
    else:
        labels, classes = _labels_from_values(list(ds[label]))
    inputs: Sequence
    if image:
        inputs = LazySequence(partial(_hf_item, ds, image, _hf_image), range(len(ds)))
        modality = "image"
    else:
        inputs = [str(t).strip() if t is not None else "" for t in ds[text]]
        modality = "text"
    mask_seq = LazySequence(partial(_hf_item, ds, masks[0], _hf_mask), range(len(ds))) if image and masks else None
    files = [
        (f["filename"], os.stat(f["filename"]).st_mtime_ns) for f in ds.cache_files if os.path.exists(f["filename"])
    ]
    return (
        modality,
        inputs,
        labels,
        classes,
        [f"row {i}" for i in range(len(ds))],
        mask_seq,
        _fingerprint(source, files, len(ds), text, image, label),
    )


def looks_like_hub_id(source: str) -> bool:
    return re.fullmatch(r"[\w.\-]+(/[\w.\-]+)?", source) is not None


# -- one entry point ---------------------------------------------------------------------------------------
def _pick_split(splits: list[str], split: str | None, source: str) -> str:
    if split is None:
        return next((s for s in PREFERRED_SPLITS if s in splits), splits[0])
    if split not in splits:
        raise DatasetError(f"{source} has no split {split!r}; its splits are: {', '.join(splits)}.")
    return split


def load_source(
    source: str,
    split: str | None = None,
    masks: str | Path | None = None,
    text_column: str | None = None,
    image_column: str | None = None,
    label_column: str | None = None,
):
    """A user source (folder, table file, saved `datasets` folder or cached hub id) as a lazy data.Dataset.

    split: None picks test, validation or val when present, else the only split. Raises DatasetError."""
    path = Path(source).expanduser()
    problems: list = []
    mask_seq = None
    if path.is_dir() and not is_saved_hf_dataset(path):
        splits = folder_splits(path)
        split = _pick_split(splits, split, source)
        inputs, labels, classes, names, mask_seq, problems, key = _image_folder(path, split, masks)
        modality = "image"
    elif path.is_file():
        if path.suffix.lower() not in TABLE_SUFFIXES:
            raise DatasetError(
                f"{path.name}: HeadScope reads tables as {', '.join(TABLE_SUFFIXES)}, image folders "
                "and `datasets` folders; this file type is not one of them."
            )
        splits = [ONE_SPLIT]
        split = _pick_split(splits, split, source)
        modality, inputs, labels, classes, names, problems, key = _table(path, text_column, image_column, label_column)
    elif path.is_dir() or (not path.exists() and looks_like_hub_id(source)):
        obj = _open_hf(source, path if path.is_dir() else None)
        splits = hf_splits(obj)
        split = _pick_split(splits, split, source)
        part = obj[split] if hasattr(obj, "keys") else obj
        if len(part) == 0:
            raise DatasetError(f"Split {split!r} of {source} is empty.")
        modality, inputs, labels, classes, names, mask_seq, key = _hf(
            part, source, text_column, image_column, label_column
        )
    else:
        raise DatasetError(f"{source!r} is not a bundled dataset and no such file or folder exists.")
    if modality == "text":
        keep = [i for i, t in enumerate(inputs) if t]
        problems += [(names[i], "empty text") for i in range(len(inputs)) if not inputs[i]]
        if not keep:
            raise DatasetError(f"{source} has no non-empty texts.")
        inputs, labels, names = [inputs[i] for i in keep], labels[keep], [names[i] for i in keep]
    return Dataset(
        name=Path(source).name or source,
        split=split,
        modality=modality,
        inputs=inputs,
        labels=labels,
        class_names=list(map(str, classes)),
        masks=mask_seq,
        captions=list(names),
        names=list(names),
        problems=problems,
        source=str(source),
        splits=tuple(splits),
        key=f"{source}|{split}|{key}",
        bundled=False,
    )
