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

import codecs
import csv
import hashlib
import io
import json
import os
import re
import unicodedata
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PureWindowsPath

import numpy as np
from PIL import Image, UnidentifiedImageError

from data.dataset import Dataset, DatasetError, LazySequence, decode_pool
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
CSV_SEPARATORS = (",", ";", "\t", "|")
PROBE_CHUNK = 256  # image headers read per task on the decode threads
LIKELY_ENCODING = "cp1252"  # Excel on Windows in the West: preferred among equally likely detected encodings


# -- files ------------------------------------------------------------------------------------------------
def shown(name: str) -> str:
    """A file name as text: the bytes of a name that is not UTF-8 (which Python keeps as surrogates, and which
    cannot be shown or written) escaped as \\xNN, so `caf\\xe9.png` is shown as it is spelled on the disk."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def read_image(path: str) -> Image.Image:
    """Decode one image file into an RGB or L PIL image, or raise DatasetError naming the file."""
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise DatasetError(
            f"{shown(path)} cannot be read ({e.strerror or e}). Check that the file is still there."
        ) from e
    try:
        return load_image(raw, shown(path))
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
    return hashlib.sha1(repr(parts).encode("utf-8", "surrogateescape")).hexdigest()[:16]


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


@dataclass(frozen=True)
class _File:
    path: str  # to open
    rel: str  # relative to the folder walked, with "/" between folders
    size: int
    mtime: int


def _walk(root: Path, problems: list, skip: tuple[str, ...] = ()) -> list[_File]:
    """Every non-hidden file under root, sorted by relative path; `skip`: folders of root left out. Each folder is
    read once (by device and inode), so a symbolic link loop ends; loops, unreadable folders and dangling symbolic
    links are added to problems."""
    out: list[_File] = []
    seen: set[tuple[int, int]] = set()
    stack = [(str(root), "")]
    while stack:
        folder, rel = stack.pop()
        try:
            st = os.stat(folder)
            if (st.st_dev, st.st_ino) in seen:
                problems.append((shown(folder), "a symbolic link to a folder already read (a loop?); skipped"))
                continue
            seen.add((st.st_dev, st.st_ino))
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as e:
            problems.append((shown(folder), f"folder cannot be read ({e.strerror or e}); skipped"))
            continue
        for entry in entries:
            if entry.name.startswith(".") or (not rel and entry.name in skip):
                continue
            try:
                if entry.is_dir():
                    stack.append((entry.path, f"{rel}{entry.name}/"))
                elif entry.is_file():
                    st = entry.stat()
                    out.append(_File(entry.path, rel + entry.name, st.st_size, st.st_mtime_ns))
                elif entry.is_symlink():
                    problems.append((shown(entry.path), "a symbolic link to something that does not exist; skipped"))
            except OSError as e:  # a link to itself: too many levels of symbolic links
                problems.append((shown(entry.path), f"cannot be read ({e.strerror or e}); skipped"))
    return sorted(out, key=lambda f: f.rel)


def _folders(path: Path) -> list[str]:
    """The non-hidden folders directly in path (sorted), the masks folder left out."""
    try:
        with os.scandir(path) as it:
            return sorted(e.name for e in it if not e.name.startswith(".") and e.name != MASKS_FOLDER and e.is_dir())
    except OSError as e:
        raise DatasetError(f"{shown(str(path))} cannot be read ({e.strerror or e}).") from e


def _has_files(path: Path) -> bool:
    for _, _, files in os.walk(path):
        if any(not f.startswith(".") for f in files):
            return True
    return False


# -- image folders ---------------------------------------------------------------------------------------
def folder_splits(root: Path, problems: list) -> tuple[list[str], str]:
    """The splits of an image folder and how its top level was read. Its folders are splits only when every one
    of them is named train, val, validation or test (any case); otherwise (`vehicles/{bus,train}`) they are
    classes, and the folder is one split, ONE_SPLIT. An empty split folder is left out (and added to problems)."""
    folders = _folders(root)
    if not folders or any(f.lower() not in SPLIT_NAMES for f in folders):
        named = [f for f in folders if f.lower() in SPLIT_NAMES]
        why = f" ({', '.join(named)}: class folders, as not every folder beside them is a split name)" if named else ""
        return [ONE_SPLIT], why
    found = [f for f in folders if _has_files(root / f)] or folders  # all empty: the listing says so
    problems += [(shown(f), "empty split folder; left out") for f in folders if f not in found]
    order = sorted(found, key=lambda f: SPLIT_NAMES.index(f.lower()))
    return order, f"; split folders {', '.join(map(shown, order))}"


def _probe_all(files: list[_File]) -> list[str | None]:
    """Why each file cannot be used (suffix, size and image header; no pixels decoded), or None; the headers are
    read on the decode threads."""
    reasons = [
        None if _is_image(f.rel) else f"not an image file ({shown(Path(f.rel).suffix) or 'no extension'})"
        for f in files
    ]
    todo = [i for i, r in enumerate(reasons) if r is None]
    parts = [todo[k : k + PROBE_CHUNK] for k in range(0, len(todo), PROBE_CHUNK)]
    for part, found in zip(
        parts, decode_pool().map(lambda p: [probe_image(files[i].path, files[i].size) for i in p], parts)
    ):
        for i, reason in zip(part, found):
            reasons[i] = reason
    return reasons


def _image_folder(root: Path, split: str, masks: str | Path | None, problems: list):
    """(inputs, labels, class_names, names, masks, reading, fingerprint) of one split of an image folder."""
    base = root if split == ONE_SPLIT else root / split
    files = _walk(base, problems, skip=(MASKS_FOLDER,))
    classes = sorted({f.rel.split("/", 1)[0] for f in files if "/" in f.rel and _is_image(f.rel)})
    index = {c: i for i, c in enumerate(classes)}
    if classes:
        loose = [f for f in files if f.rel.split("/", 1)[0] not in index]
        problems += [(shown(f.path), "not inside a class folder; ignored") for f in loose]
        files = [f for f in files if f.rel.split("/", 1)[0] in index]
    kept: list[_File] = []
    labels = []
    for f, reason in zip(files, _probe_all(files)):
        if reason:
            problems.append((shown(f.path), reason))
        else:
            kept.append(f)
            labels.append(index[f.rel.split("/", 1)[0]] if classes else -1)
    if not kept:
        raise DatasetError(
            f"No usable images in {shown(str(base))}: expected class sub-folders of images "
            f"(<root>/<class>/*.png|jpg|...) or image files directly in the folder"
            + (
                f"; {len(problems)} file(s) were skipped: " + "; ".join(f"{Path(p).name}: {r}" for p, r in problems[:5])
                if problems
                else ""
            )
            + "."
        )
    rels = [f.rel for f in kept]
    mask_seq = _folder_masks(base, rels, masks, problems)
    reading = (
        f"class folders {', '.join(map(shown, classes[:8]))}{' …' if len(classes) > 8 else ''}"
        if classes
        else "images directly in the folder (unlabelled)"
    )
    return (
        LazySequence(read_image, [f.path for f in kept]),
        np.asarray(labels, dtype=np.int64),
        [shown(unicodedata.normalize("NFC", c)) for c in classes],
        [shown(r) for r in rels],
        mask_seq,
        reading,
        _fingerprint(str(base), [(f.rel, f.size, f.mtime) for f in kept], str(masks)),
    )


def _folder_masks(base: Path, rels: list[str], masks: str | Path | None, problems: list):
    """Masks for the images `rels` (relative to base): same relative path without extension, else same stem."""
    folder = Path(masks).expanduser() if masks else base / MASKS_FOLDER
    if not folder.is_dir():
        if masks:
            raise DatasetError(f"The masks folder {shown(str(folder))} does not exist.")
        return None
    by_rel: dict[str, str] = {}
    by_stem: dict[str, str] = {}
    for f in _walk(folder, problems):
        if _is_image(f.rel):
            by_rel[os.path.splitext(f.rel)[0]] = f.path
            by_stem.setdefault(Path(f.rel).stem, f.path)
    found = [by_rel.get(os.path.splitext(n)[0]) or by_stem.get(Path(n).stem) for n in rels]
    missing = [n for n, f in zip(rels, found) if f is None]
    if missing:
        problems.append(
            (
                shown(str(folder)),
                f"{len(missing)} of {len(rels)} images have no mask (e.g. {shown(missing[0])}); masks not used",
            )
        )
        return None
    return LazySequence(read_mask, found)


# -- tables ----------------------------------------------------------------------------------------------
def decode_text(raw: bytes, name: str) -> tuple[str, str]:
    """(text, encoding) of a text file's bytes: UTF-8 with a byte-order mark, UTF-16 with one, UTF-8, else the
    encoding charset-normalizer finds (Excel's cp1252 / latin-1 exports). DatasetError when none fits."""
    if raw.startswith(codecs.BOM_UTF8):
        return raw[len(codecs.BOM_UTF8) :].decode("utf-8", "replace"), "UTF-8 with BOM"
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return raw.decode("utf-16", "replace"), "UTF-16"
    try:
        return raw.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        pass
    import charset_normalizer

    found = charset_normalizer.from_bytes(raw)
    best = found.best()
    if best is None:
        raise DatasetError(f"{name} is not text in an encoding HeadScope can recognise; save it as UTF-8.")
    tied = [m for m in found if (m.chaos, m.coherence) == (best.chaos, best.coherence)]
    best = next((m for m in tied if LIKELY_ENCODING in m.could_be_from_charset), best)  # cp1250 or cp1252: Excel's
    encoding = LIKELY_ENCODING if LIKELY_ENCODING in best.could_be_from_charset else best.encoding
    return str(best), f"{encoding} (detected)"


def _separator(text: str) -> str:
    """The field separator of a CSV: the one of , ; tab | that its header line holds most of (',' when none)."""
    header = text.split("\n", 1)[0]
    return max(CSV_SEPARATORS, key=header.count) if any(s in header for s in CSV_SEPARATORS) else ","


def _csv_records(text: str, sep: str, name: str, problems: list) -> tuple[list[dict], list[str]]:
    """The rows of a CSV as records, and the line each starts on; a row with more or fewer fields than the
    header is skipped and added to problems with its line number (1-based)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    header = next(reader, [])
    records, where, line = [], [], reader.line_num + 1
    for fields in reader:
        if fields and len(fields) != len(header):
            problems.append((f"{name} line {line}", f"{len(fields)} fields where the header has {len(header)}"))
        elif any(fields):
            records.append({h: v if v != "" else None for h, v in zip(header, fields)})
            where.append(f"line {line}")
        line = reader.line_num + 1
    return records, where


def _jsonl_records(text: str, name: str, problems: list) -> tuple[list[dict], list[str]]:
    """The objects of a JSON Lines file, and their lines; a line that is not a JSON object is skipped and added to
    problems with its line number (1-based)."""
    records, where = [], []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            problems.append((f"{name} line {n}", f"not valid JSON ({e.msg}, column {e.colno})"))
            continue
        if isinstance(obj, dict):
            records.append(obj)
            where.append(f"line {n}")
        else:
            problems.append((f"{name} line {n}", "not a JSON object ({...})"))
    return records, where


def _read_table(path: Path, problems: list):
    """(table, where each row is in the file: "line 5" or "row 3", how it was read). Bad rows of a CSV, TSV or
    JSONL file are skipped and added to problems; a file that cannot be read at all raises DatasetError."""
    import pandas as pd

    name, suffix = shown(path.name), path.suffix.lower()
    try:
        if suffix == ".parquet":
            df = pd.read_parquet(path)
            return df, [f"row {i}" for i in range(len(df))], "Parquet"
        text, encoding = decode_text(path.read_bytes(), name)
    except DatasetError:
        raise
    except Exception as e:  # pandas/pyarrow raise many types for a malformed file
        raise DatasetError(
            f"{name} could not be read as {suffix.lstrip('.').upper()} ({type(e).__name__}: {str(e)[:200]})."
        ) from e
    if suffix == ".jsonl":
        records, where = _jsonl_records(text, name, problems)
        return pd.DataFrame.from_records(records), where, encoding
    sep = "\t" if suffix == ".tsv" else _separator(text)
    records, where = _csv_records(text, sep, name, problems)
    return pd.DataFrame.from_records(records), where, f"{encoding}, separator {sep!r}"


def _column(columns, given: str | None, candidates: Sequence[str], what: str, source) -> str | None:
    """The column named `given` (case-insensitive), else the first of candidates present (case-insensitive)."""
    lower = {str(c).lower(): c for c in columns}
    if given is not None:
        if given in columns or given.lower() in lower:
            return given if given in columns else lower[given.lower()]
        raise DatasetError(f"{source} has no {what} column {given!r}; its columns are: {', '.join(map(str, columns))}.")
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


def _image_path(folder: Path, value: str) -> Path:
    """An image path of a table, relative to the table's folder; Windows backslashes read as folders."""
    path = folder / Path(value).expanduser()
    if not path.exists() and "\\" in value and os.sep == "/":
        return folder / PureWindowsPath(value).as_posix()
    return path


def _guess_input_column(df, label) -> tuple[str | None, str | None]:
    """(image, text) column of a table whose column names say neither: the first column of image file names, else
    the column of words (not numbers) with the longest values; the label column is not a candidate."""
    import pandas as pd

    words = {}
    for c in df.columns:
        values = df[c].dropna()
        if c == label or not len(values) or not all(isinstance(v, str) for v in values):
            continue
        if values.str.lower().str.endswith(IMAGE_SUFFIXES).mean() > 0.5:
            return c, None
        if pd.to_numeric(values, errors="coerce").isna().mean() > 0.5:
            words[c] = values.str.len().mean()
    return None, max(words, key=words.__getitem__) if words else None


def _table(path: Path, text_column, image_column, label_column, problems: list):
    """(modality, inputs, labels, class_names, names, reading, fingerprint, columns, chosen) of a table file."""
    df, where, read = _read_table(path, problems)
    name = shown(path.name)
    if df.empty:
        raise DatasetError(
            f"{name} has no rows" + (": " + "; ".join(f"{p}: {r}" for p, r in problems[:3]) if problems else "") + "."
        )
    text = _column(df.columns, text_column, TEXT_COLUMNS, "text", name) if image_column is None else None
    image = _column(df.columns, image_column, IMAGE_COLUMNS, "image", name) if text_column is None else None
    if text is not None and image is not None:
        image = image if image_column is not None else None
        text = None if image is not None else text
    label = None if label_column == "" else _column(df.columns, label_column, LABEL_COLUMNS, "label", name)
    if text is None and image is None:
        image, text = _guess_input_column(df, label)
    if text is None and image is None:
        raise DatasetError(
            f"{name} has no text or image column: name one 'text' or 'sentence' (texts) or 'image' "
            f"or 'path' (image files), or choose one (text_column= / image_column=). Its columns are: "
            f"{', '.join(map(str, df.columns))}."
        )
    labels, classes = (
        _labels_from_values(df[label].to_numpy()) if label is not None else (np.full(len(df), -1, dtype=np.int64), [])
    )
    keep: list[int] = []
    inputs: Sequence
    if text is not None:
        values = df[text]
        for i, v in enumerate(values):
            if isinstance(v, str) and v.strip():
                keep.append(i)
            else:
                problems.append((f"{name} {where[i]}", "empty or missing text"))
        inputs = [values.iloc[i].strip() for i in keep]
        names = [where[i] for i in keep]
        modality = "text"
    else:
        paths = []
        for i, v in enumerate(df[image]):
            p = _image_path(path.parent, v) if isinstance(v, str) and v.strip() else None
            reason = "no image path" if p is None else probe_image(str(p))
            if reason:
                problems.append((shown(str(p)) if p else f"{name} {where[i]}", reason))
            else:
                keep.append(i)
                paths.append(str(p))
        inputs = LazySequence(read_image, paths)
        names = [shown(str(df[image].iloc[i])) for i in keep]
        modality = "image"
    if not keep:
        raise DatasetError(f"{name} has no usable rows: " + "; ".join(f"{p}: {r}" for p, r in problems[:5]) + ".")
    st = path.stat()
    used = text if text is not None else image
    reading = f"{read}; {modality} column {used!r}" + (f", label column {label!r}" if label is not None else "")
    return (
        modality,
        inputs,
        labels[keep],
        classes,
        names,
        reading,
        _fingerprint(str(path), st.st_size, st.st_mtime_ns, text, image, label),
        tuple(map(str, df.columns)),
        {"input": used, "label": label},
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
    """(modality, inputs, labels, class_names, names, masks, reading, fingerprint, columns, chosen) of one
    datasets.Dataset split."""
    import datasets

    feats = ds.features
    kinds = {name: type(f).__name__ for name, f in feats.items()}
    text_column, image_column, label_column = (
        given if not given else _column(list(feats), given, (), what, source)
        for given, what in ((text_column, "text"), (image_column, "image"), (label_column, "label"))
    )
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
    for column, usable, what in ((image, images, "images"), (text, strings, "texts")):
        if column and column not in usable:
            raise DatasetError(f"{source}: column {column!r} holds {kinds[column]}, not {what}.")
    label = (
        None
        if label_column == ""
        else label_column
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
    used = image or text
    reading = f"{modality} column {used!r}" + (f", label column {label!r} ({kinds[label]})" if label else "")
    return (
        modality,
        inputs,
        labels,
        classes,
        [f"row {i}" for i in range(len(ds))],
        mask_seq,
        reading,
        _fingerprint(source, files, len(ds), text, image, label),
        tuple(feats),
        {"input": used, "label": label},
    )


def looks_like_hub_id(source: str) -> bool:
    """`org/name`, where no local folder `org` exists (then `mydata/val` is a mistyped path, not a hub id)."""
    if re.fullmatch(r"[\w.\-]+/[\w.\-]+", source) is None:
        return False
    return not Path(source).parent.expanduser().exists()


# -- one entry point ---------------------------------------------------------------------------------------
def _pick_split(splits: list[str], split: str | None, source: str) -> str:
    if split is None:
        return next((s for s in splits if s.lower() in PREFERRED_SPLITS), splits[0])
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

    split: None picks test, validation or val when present, else the first split. Raises DatasetError."""
    path = Path(source).expanduser()
    problems: list = []
    mask_seq, columns, chosen = None, (), {}
    if path.is_dir() and not is_saved_hf_dataset(path):
        splits, layout = folder_splits(path, problems)
        split = _pick_split(splits, split, source)
        inputs, labels, classes, names, mask_seq, reading, key = _image_folder(path, split, masks, problems)
        reading += layout
        modality = "image"
    elif path.is_file():
        if path.suffix.lower() not in TABLE_SUFFIXES:
            raise DatasetError(
                f"{shown(path.name)}: HeadScope reads tables as {', '.join(TABLE_SUFFIXES)}, image folders "
                "and `datasets` folders; this file type is not one of them."
            )
        splits = [ONE_SPLIT]
        split = _pick_split(splits, split, source)
        modality, inputs, labels, classes, names, reading, key, columns, chosen = _table(
            path, text_column, image_column, label_column, problems
        )
    elif path.is_dir() or (not path.exists() and looks_like_hub_id(source)):
        obj = _open_hf(source, path if path.is_dir() else None)
        splits = hf_splits(obj)
        split = _pick_split(splits, split, source)
        part = obj[split] if hasattr(obj, "keys") else obj
        if len(part) == 0:
            raise DatasetError(f"Split {split!r} of {source} is empty.")
        modality, inputs, labels, classes, names, mask_seq, reading, key, columns, chosen = _hf(
            part, source, text_column, image_column, label_column
        )
    else:
        near = next((p for p in path.parents if p.exists()), None) if not path.is_absolute() else None
        hint = f" ({shown(str(near))} exists: a mistyped path?)" if near is not None and str(near) != "." else ""
        raise DatasetError(f"{source!r} is not a bundled dataset and no such file or folder exists{hint}.")
    if modality == "text":
        keep = [i for i, t in enumerate(inputs) if t]
        problems += [(names[i], "empty text") for i in range(len(inputs)) if not inputs[i]]
        if not keep:
            raise DatasetError(f"{source} has no non-empty texts.")
        inputs, labels, names = [inputs[i] for i in keep], labels[keep], [names[i] for i in keep]
    given = {"masks": masks, "text_column": text_column, "image_column": image_column, "label_column": label_column}
    return Dataset(
        name=shown(Path(source).name or source),
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
        reading=reading,
        columns=columns,
        chosen=chosen,
        load_args={k: str(v) for k, v in given.items() if v is not None},
    )
