"""The user's own data: image folders, table files and `datasets` datasets, all built in the test (tmp_path)."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from analysis.evaluation import accuracy, predict
from data import DatasetError, load_dataset, match_labels
from data.dataset import LazySequence
from tests.conftest import save_tiny_vit


# -- fixtures --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits_test():
    return load_dataset("digits", "test")


@pytest.fixture(scope="module")
def digits_folder(tmp_path_factory, digits_test):
    """The digits test split as root/<digit>/<index>.png (the ImageFolder layout)."""
    root = tmp_path_factory.mktemp("digits_folder")
    for i, (img, y) in enumerate(zip(digits_test.inputs, digits_test.labels)):
        (root / str(y)).mkdir(exist_ok=True)
        img.save(root / str(y) / f"{i:04d}.png")
    return root


def _bundled_rows(ds) -> list[int]:
    """Indices into the bundled split of the files of a folder dataset written by the fixtures (<index>.png)."""
    return [int(n.rsplit("/", 1)[-1].split(".")[0]) for n in ds.names]


def _prose_table(path, digits_as_labels=False):
    prose = load_dataset("prose", "test")
    labels = list(prose.labels) if digits_as_labels else [prose.class_names[y] for y in prose.labels]
    return pd.DataFrame({"sentence": prose.inputs, "label": labels}), prose


# -- image folders ---------------------------------------------------------------------------------------
def test_class_folder_scores_the_bundled_accuracy(digits_vit, digits_folder, digits_test):
    ds = load_dataset(str(digits_folder))
    assert len(ds) == len(digits_test) and ds.class_names == [str(i) for i in range(10)]
    assert ds.modality == "image" and ds.splits == ("all",) and not ds.problems
    assert isinstance(ds.inputs, LazySequence)
    rows = _bundled_rows(ds)
    assert np.array_equal(ds.labels, digits_test.labels[rows])
    mapped = match_labels(digits_vit.spec.class_names, ds.class_names).to_model(ds.labels)
    folder_acc = accuracy(predict(digits_vit, ds.inputs), mapped)
    bundled_acc = accuracy(predict(digits_vit, digits_test.inputs), digits_test.labels)
    assert folder_acc == pytest.approx(bundled_acc, abs=1e-12) and folder_acc > 0.95


def test_listing_decodes_no_pixels(digits_folder, monkeypatch):
    from PIL import ImageFile

    loads = []
    original = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: loads.append(1) or original(self))
    ds = load_dataset(str(digits_folder))
    sub = ds.sample(50)
    assert not loads and isinstance(sub.inputs, LazySequence) and len(sub) == 50
    sub.inputs[3]
    assert loads  # decoded on access


def test_sample_is_seeded_nested_and_mixes_classes(digits_folder):
    ds = load_dataset(str(digits_folder))
    small, large = ds.sample_rows(40), ds.sample_rows(120)
    assert np.array_equal(small, load_dataset(str(digits_folder)).sample_rows(40))
    assert set(small) <= set(large) and np.all(np.diff(small) > 0)
    assert len(np.unique(ds.labels[small])) >= 8  # the folder is sorted by class; the sample is not one class


@pytest.mark.parametrize("name", ["prose", "digits", "shapes"])
def test_samples_are_stratified_by_class(name):
    ds = load_dataset(name, "test")
    order = ds.sample_order()
    assert np.array_equal(np.sort(order), np.arange(len(ds)))  # every row once
    counts = np.bincount(ds.labels, minlength=len(ds.class_names))
    for n in (len(ds.class_names), 12, 30, len(ds) // 2):
        per_class = np.bincount(ds.labels[ds.sample_rows(n)], minlength=len(ds.class_names))
        fair = np.minimum(counts, n // len(ds.class_names))  # a round-robin gives each class its share...
        assert np.all(per_class >= fair) and per_class.sum() == n  # ...while it has rows left
        assert per_class.max() - per_class[counts > per_class].min(initial=per_class.max()) <= 1
    assert not np.array_equal(ds.sample_rows(12), ds.sample_rows(12, seed=1))  # the seed matters


def test_unlabelled_rows_are_one_more_group():
    from data.dataset import Dataset

    labels = np.array([0] * 10 + [-1] * 10 + [1] * 2)
    ds = Dataset("toy", "all", "text", [str(i) for i in range(len(labels))], labels, ["a", "b"])
    assert sorted(labels[ds.sample_rows(6)]) == [-1, -1, 0, 0, 1, 1]


def test_flat_folder_is_unlabelled(tmp_path, digits_test):
    for i in range(5):
        digits_test.inputs[i].save(tmp_path / f"img{i}.png")
    ds = load_dataset(str(tmp_path))
    assert len(ds) == 5 and ds.class_names == [] and not ds.labelled
    assert list(ds.labels) == [-1] * 5 and ds.names[0] == "img0.png"
    assert match_labels(["a", "b"], ds.class_names).to_model(ds.labels).tolist() == [-1] * 5


def test_bad_files_are_skipped_and_named(tmp_path, digits_test):
    (tmp_path / "cat").mkdir()
    (tmp_path / "dog").mkdir()
    for i in range(3):
        digits_test.inputs[i].convert("RGB").save(tmp_path / "cat" / f"c{i}.jpg")
        digits_test.inputs[i].save(tmp_path / "dog" / f"d{i}.png")
    (tmp_path / "cat" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (tmp_path / "cat" / "empty.jpg").write_bytes(b"")
    (tmp_path / "dog" / "notes.txt").write_text("photographed in 2024")
    ds = load_dataset(str(tmp_path))
    assert len(ds) == 6 and ds.class_names == ["cat", "dog"]
    reasons = {p.rsplit("/", 1)[-1]: r for p, r in ds.problems}
    assert set(reasons) == {"corrupt.png", "empty.jpg", "notes.txt"}
    assert "empty" in reasons["empty.jpg"] and "not an image" in reasons["notes.txt"]
    assert all(img.size == (8, 8) for img in ds.inputs)


def test_a_file_that_breaks_after_listing_raises_a_clear_error(tmp_path, digits_test):
    big = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    big.save(tmp_path / "a.png")
    digits_test.inputs[0].save(tmp_path / "b.png")
    ds = load_dataset(str(tmp_path))
    raw = (tmp_path / "a.png").read_bytes()
    (tmp_path / "a.png").write_bytes(raw[: len(raw) // 2])  # truncated: the header still reads
    with pytest.raises(DatasetError, match="a.png"):
        ds.inputs[0]
    assert ds.inputs[1].size == (8, 8)


def test_images_too_large_are_refused_from_the_header(tmp_path, monkeypatch):
    import data.sources

    Image.new("L", (300, 200)).save(tmp_path / "huge.png")
    Image.new("L", (10, 10)).save(tmp_path / "small.png")
    monkeypatch.setattr(data.sources, "MAX_IMAGE_PIXELS", 50_000)
    ds = load_dataset(str(tmp_path))
    assert ds.names == ["small.png"] and "too large" in ds.problems[0][1]


def test_empty_missing_and_unsupported_sources(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="No usable images"):
        load_dataset(str(tmp_path / "empty"))
    with pytest.raises(DatasetError, match="no such file or folder"):
        load_dataset(str(tmp_path / "missing" / "x.csv"))
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DatasetError, match="file type"):
        load_dataset(str(tmp_path / "notes.txt"))
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    (only_bad / "x.png").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="x.png"):
        load_dataset(str(only_bad))


def test_split_folders_and_masks(tmp_path, shapes_vit):
    shapes = load_dataset("shapes", "test")
    rows = list(range(0, 24))
    for split, part in (("train", rows[:12]), ("test", rows[12:])):
        for i in part:
            cls = shapes.class_names[shapes.labels[i]]
            (tmp_path / split / cls).mkdir(parents=True, exist_ok=True)
            (tmp_path / split / "masks" / cls).mkdir(parents=True, exist_ok=True)
            shapes.inputs[i].save(tmp_path / split / cls / f"{i:04d}.jpg", quality=95)
            Image.fromarray(shapes.masks[i].astype(np.uint8)).save(tmp_path / split / "masks" / cls / f"{i:04d}.png")
    ds = load_dataset(str(tmp_path))
    assert ds.splits == ("train", "test") and ds.split == "test" and len(ds) == 12
    assert "masks" not in ds.class_names and ds.masks is not None
    train = load_dataset(str(tmp_path), "train")
    assert len(train) == 12 and train.split == "train"
    with pytest.raises(DatasetError, match="splits are: train, test"):
        load_dataset(str(tmp_path), "validation")
    idx = _bundled_rows(ds)
    assert np.array_equal(ds.mask_batch(range(len(ds)), 48), shapes.masks[idx])  # 0/1 masks, same size
    assert ds.mask_batch([0], 24).shape == (1, 24, 24)  # resized like the image in model.prepare

    from analysis.faithfulness import evaluate

    mine = evaluate(shapes_vit, ds, ["rollout"], n=12).table.set_index("method")
    ref = evaluate(shapes_vit, shapes.subset(idx), ["rollout"], n=12).table.set_index("method")
    assert mine.loc["rollout", "pointing_game"] == ref.loc["rollout", "pointing_game"]
    assert mine.loc["rollout", "miou"] == pytest.approx(ref.loc["rollout", "miou"], abs=0.05)  # JPEG vs raw pixels


def test_missing_masks_are_reported_not_used(tmp_path, digits_test):
    (tmp_path / "a").mkdir()
    (tmp_path / "masks" / "a").mkdir(parents=True)
    for i in range(3):
        digits_test.inputs[i].save(tmp_path / "a" / f"{i}.png")
    Image.new("L", (8, 8), 255).save(tmp_path / "masks" / "a" / "0.png")
    ds = load_dataset(str(tmp_path))
    assert ds.masks is None and "2 of 3 images have no mask" in ds.problems[0][1]


# -- tables ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".tsv", ".parquet"])
def test_prose_table_gives_minilms_bundled_accuracy(tmp_path, minilm, suffix):
    df, prose = _prose_table(tmp_path)
    path = tmp_path / f"prose{suffix}"
    {
        ".csv": lambda: df.to_csv(path, index=False),
        ".tsv": lambda: df.to_csv(path, sep="\t", index=False),
        ".jsonl": lambda: df.to_json(path, orient="records", lines=True),
        ".parquet": lambda: df.to_parquet(path),
    }[suffix]()
    ds = load_dataset(str(path))
    assert ds.modality == "text" and len(ds) == len(prose) and ds.inputs[0] == prose.inputs[0]
    mapped = match_labels(minilm.spec.class_names, ds.class_names).to_model(ds.labels)
    assert (mapped >= 0).all()
    if suffix in (".csv", ".jsonl"):  # the same texts: one forward comparison is enough per file family
        acc = accuracy(predict(minilm, ds.inputs), mapped)
        assert acc == pytest.approx(accuracy(predict(minilm, prose.inputs), prose.labels), abs=1e-12)


def test_table_with_integer_labels_matches_by_id_and_skips_empty_rows(tmp_path, minilm):
    df, prose = _prose_table(tmp_path, digits_as_labels=True)
    df.loc[2, "sentence"] = "   "
    df.loc[3, "label"] = None
    df = df.rename(columns={"sentence": "Review", "label": "stars"})
    df.to_csv(tmp_path / "t.csv", index=False)
    guessed = load_dataset(str(tmp_path / "t.csv"))  # no usual names: the column of words is the text
    assert guessed.chosen == {"input": "Review", "label": None} and not guessed.labelled
    assert not load_dataset(str(tmp_path / "t.csv"), label_column="").labelled
    pd.DataFrame({"n": [1, 2]}).to_csv(tmp_path / "numbers.csv", index=False)
    with pytest.raises(DatasetError, match="no text or image column"):
        load_dataset(str(tmp_path / "numbers.csv"))
    with pytest.raises(DatasetError, match="no label column 'grade'"):
        load_dataset(str(tmp_path / "t.csv"), text_column="Review", label_column="grade")
    ds = load_dataset(str(tmp_path / "t.csv"), text_column="Review", label_column="stars")
    assert len(ds) == len(prose) - 1 and ds.problems == [
        ("t.csv line 4", "empty or missing text")
    ]  # row 2 below the header
    assert ds.labels[2] == -1  # row 3 of the file, without a label
    m = match_labels(minilm.spec.class_names, ds.class_names)
    assert set(m.how) == {"id"} and m.mapping.tolist() == list(range(len(ds.class_names)))


def test_table_of_image_paths(tmp_path, digits_test):
    (tmp_path / "img").mkdir()
    rows = []
    for i in range(6):
        digits_test.inputs[i].save(tmp_path / "img" / f"{i}.png")
        rows.append({"path": f"img/{i}.png", "label": str(digits_test.labels[i])})
    rows.append({"path": "img/missing.png", "label": "3"})
    pd.DataFrame(rows).to_csv(tmp_path / "index.csv", index=False)
    ds = load_dataset(str(tmp_path / "index.csv"))
    assert ds.modality == "image" and len(ds) == 6 and ds.problems[0][1] == "file not found"
    assert np.array_equal(np.asarray(ds.inputs[4]), np.asarray(digits_test.inputs[4]))
    assert [ds.class_names[y] for y in ds.labels] == [str(y) for y in digits_test.labels[:6]]


def test_malformed_table_gives_a_clear_error(tmp_path):
    (tmp_path / "x.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DatasetError, match="could not be read as PARQUET"):
        load_dataset(str(tmp_path / "x.parquet"))
    (tmp_path / "x.jsonl").write_text("{broken")
    with pytest.raises(DatasetError, match="x.jsonl has no rows: x.jsonl line 1: not valid JSON"):
        load_dataset(str(tmp_path / "x.jsonl"))


# -- Hugging Face datasets -------------------------------------------------------------------------------
def test_saved_datasets_folder_with_image_and_classlabel(tmp_path, digits_test, digits_vit):
    import datasets

    feats = datasets.Features(
        {"img": datasets.Image(), "digit": datasets.ClassLabel(names=[str(i) for i in range(10)])}
    )
    part = {"img": list(digits_test.inputs[:40]), "digit": [int(y) for y in digits_test.labels[:40]]}
    dd = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(part, features=feats),
            "validation": datasets.Dataset.from_dict(part, features=feats).select(range(20)),
        }
    )
    dd.save_to_disk(str(tmp_path / "hf"))
    ds = load_dataset(str(tmp_path / "hf"))
    assert ds.splits == ("train", "validation") and ds.split == "validation" and len(ds) == 20
    assert ds.modality == "image" and ds.class_names == [str(i) for i in range(10)]
    assert np.array_equal(ds.labels, digits_test.labels[:20])
    assert np.array_equal(np.asarray(ds.inputs[5]), np.asarray(digits_test.inputs[5]))
    probs = predict(digits_vit, ds.inputs)
    ref = predict(digits_vit, digits_test.inputs[:20])
    assert np.allclose(probs, ref, atol=1e-6)
    single = tmp_path / "one"
    dd["train"].save_to_disk(str(single))
    assert len(load_dataset(str(single))) == 40


def test_saved_text_dataset_and_offline_hub_id(tmp_path):
    import datasets

    datasets.Dataset.from_dict(
        {"text": ["a first sentence here", "", "another one"], "label": ["x", "y", "x"]}
    ).save_to_disk(str(tmp_path / "txt"))
    ds = load_dataset(str(tmp_path / "txt"))
    assert ds.modality == "text" and ds.inputs == ["a first sentence here", "another one"]
    assert ds.class_names == ["x", "y"] and ds.problems == [("row 1", "empty text")]
    with pytest.raises(DatasetError, match="offline") as e:
        load_dataset("no-such-user/no-such-dataset")
    assert "Bundled datasets" in str(e.value)


# -- label matching --------------------------------------------------------------------------------------
def test_match_labels_by_name_synonym_and_id():
    model = ["tench, Tinca tinca", "tabby, tabby cat", "Egyptian cat", "crane", "crane"]
    m = match_labels(model, ["Tabby_Cat", "egyptian-cat", "TENCH", "crane", "zebra"])
    assert m.mapping.tolist() == [1, 2, 0, -1, -1]
    assert m.how == ("synonym", "name", "synonym", "ambiguous", "")
    assert m.unmatched == ["crane", "zebra"] and m.ambiguous == (("crane", (3, 4)),)
    assert m.fits() == ["crane: model classes 3 (crane) or 4 (crane)"]
    assert m.to_model([0, 4, -1, 2]).tolist() == [1, -1, -1, 0]
    assert (
        "3 of 5" in m.summary()
        and "1 fit several" in m.summary()
        and list(m.table()["matched by"])
        == [
            "synonym",
            "name",
            "synonym",
            "ambiguous",
            "unmatched",
        ]
    )
    ids = match_labels(["neg", "pos"], ["0", "1"])
    assert ids.mapping.tolist() == [0, 1] and set(ids.how) == {"id"}
    assert match_labels(["neg", "pos"], ["0", "1", "2"]).mapping.tolist() == [-1, -1, -1]  # 2 is out of range
    assert match_labels([str(i) for i in range(10)], ["3", "7"]).how == ("name", "name")


def test_imagenet_style_model_against_synonym_folders(tmp_path, digits_test):
    """A tiny random ViT with ImageNet-style id2label, and a folder whose classes use one synonym each."""
    from analysis.importance import as_sample, evaluate_gates, gradient_per_sample
    from models import load_model

    save_tiny_vit(tmp_path / "model", ("tench, Tinca tinca", "tabby, tabby cat", "goldfish, Carassius auratus"))
    model = load_model(str(tmp_path / "model"), device="cpu")
    for cls in ("tabby_cat", "Tench", "goldfish", "unicorn"):
        (tmp_path / "data" / cls).mkdir(parents=True)
        for i in range(2):
            digits_test.inputs[i].convert("RGB").save(tmp_path / "data" / cls / f"{i}.png")
    ds = load_dataset(str(tmp_path / "data"))
    m = match_labels(model.spec.class_names, ds.class_names)
    assert ds.class_names == ["Tench", "goldfish", "tabby_cat", "unicorn"]
    assert m.mapping.tolist() == [0, 2, 1, -1] and m.unmatched == ["unicorn"]
    sample = as_sample(model, ds)
    assert sample.labels.tolist() == [0, 0, 2, 2, 1, 1, -1, -1]
    logits = model.logits(sample.batch)
    pred = logits.argmax(-1)
    # all heads kept: accuracy against the true class where known, against the prediction for 'unicorn'
    intact = evaluate_gates(model, sample, torch.ones(1, 2, 4), ("accuracy", "loss"))
    target = torch.where(sample.labels >= 0, sample.labels, pred)
    assert np.allclose(intact["accuracy"][0], (pred == target).float().numpy())
    assert np.allclose(
        intact["loss"][0], torch.nn.functional.cross_entropy(logits, target, reduction="none"), atol=1e-5
    )
    grad = gradient_per_sample(model, sample)  # the gradient score uses the same targets
    g = torch.ones(8, 2, 4, requires_grad=True)
    loss = torch.nn.functional.cross_entropy(
        model.run(sample.batch, capture=False, head_gates=g).logits, target, reduction="sum"
    )
    (ref,) = torch.autograd.grad(loss, g)
    assert np.allclose(grad, ref.abs().permute(1, 2, 0).numpy(), atol=1e-6)


def test_recent_datasets_are_remembered(tmp_path, monkeypatch):
    from ui import state

    monkeypatch.setenv("HEADSCOPE_HOME", str(tmp_path))
    state.remember_dataset("/data/a", "image")
    state.remember_dataset("/data/b.csv", "text")
    state.remember_dataset("/data/a", "image")
    assert [r["source"] for r in state.recent_datasets()] == ["/data/a", "/data/b.csv"]
    (tmp_path / state.RECENT_FILE).write_text("{broken")
    assert state.recent_datasets() == []
    assert json.loads(json.dumps(state.recent_datasets())) == []


# -- real-world layouts and files (issue 31) ----------------------------------------------------------------
def _images(folder, n, digits, start=0):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        digits.inputs[start + i].save(folder / f"{start + i}.png")


def test_split_names_among_class_names_are_classes(tmp_path, digits_test):
    for cls in ("bus", "car", "train", "truck"):
        _images(tmp_path / "vehicles" / cls, 3, digits_test)
    ds = load_dataset(str(tmp_path / "vehicles"))
    assert len(ds) == 12 and ds.class_names == ["bus", "car", "train", "truck"] and ds.splits == ("all",)
    assert "train: class folders" in ds.reading and not ds.problems
    for split in ("Train", "test"):  # every folder a split name (any case): splits
        _images(tmp_path / "split" / split / "bus", 2, digits_test)
    ds = load_dataset(str(tmp_path / "split"))
    assert ds.splits == ("Train", "test") and ds.split == "test" and "split folders Train, test" in ds.reading


def test_an_empty_split_is_left_out(tmp_path, digits_test):
    _images(tmp_path / "train" / "a", 2, digits_test)
    (tmp_path / "test").mkdir()
    ds = load_dataset(str(tmp_path))
    assert ds.splits == ("train",) and ds.split == "train" and len(ds) == 2
    assert ds.problems == [("test", "empty split folder; left out")]


def test_symlink_loops_dangling_links_and_unreadable_folders_are_problems(tmp_path, digits_test, monkeypatch):
    import os

    _images(tmp_path / "cls", 2, digits_test)
    _images(tmp_path / "other" / "deep", 1, digits_test, start=2)
    (tmp_path / "cls" / "loop").symlink_to(tmp_path / "cls")  # ln -s . cls/loop
    (tmp_path / "cls" / "self").symlink_to(tmp_path / "cls" / "self")  # a link to itself
    (tmp_path / "cls" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    ds = load_dataset(str(tmp_path))
    assert ds.names == ["cls/0.png", "cls/1.png", "other/deep/2.png"]
    reasons = {p.rsplit("/", 1)[-1]: r for p, r in ds.problems}
    assert set(reasons) == {"loop", "self", "gone.png"}
    assert "already read" in reasons["loop"] and "symbolic links" in reasons["self"]
    assert "does not exist" in reasons["gone.png"]
    scandir = os.scandir

    def refuse(path):
        if str(path).endswith("deep"):
            raise PermissionError(13, "Permission denied")
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refuse)  # root reads every folder: refuse one instead of chmod 000
    ds = load_dataset(str(tmp_path))
    assert (
        len(ds) == 2
        and (str(tmp_path / "other" / "deep"), "folder cannot be read (Permission denied); skipped") in ds.problems
    )


def test_names_that_are_not_utf8_are_shown_escaped(tmp_path, digits_test):
    import os

    folder = tmp_path / os.fsdecode(b"caf\xe9")  # a class folder and files named in latin-1, as on old shares
    folder.mkdir()
    digits_test.inputs[0].save(folder / os.fsdecode(b"\xe9t\xe9.png"))
    (folder / os.fsdecode(b"bad\xff.png")).write_bytes(b"")
    ds = load_dataset(str(tmp_path))
    assert ds.class_names == ["caf\\xe9"] and ds.names == ["caf\\xe9/\\xe9t\\xe9.png"]
    assert ds.problems[0][0].endswith("caf\\xe9/bad\\xff.png")
    assert ds.inputs[0].size == (8, 8)
    for text in [*ds.names, *ds.class_names, *(p for p, _ in ds.problems)]:
        text.encode("utf-8")  # shown and written anywhere without UnicodeEncodeError


def test_decomposed_unicode_class_folders_match(tmp_path, digits_test):
    _images(tmp_path / "cafe\u0301", 1, digits_test)  # macOS writes é as e + combining accent
    ds = load_dataset(str(tmp_path))
    assert ds.class_names == ["café"] and match_labels(["café", "tea"], ds.class_names).mapping.tolist() == [0]
    assert match_labels(["cafe\u0301"], ["Café"]).mapping.tolist() == [0]  # a table's labels too


def test_a_mistyped_relative_path_is_not_asked_of_the_hub(tmp_path, monkeypatch):
    import data.sources

    (tmp_path / "mydata").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(data.sources, "_open_hf", lambda *a: pytest.fail("asked the hub"))
    with pytest.raises(DatasetError, match="mydata exists: a mistyped path"):
        load_dataset("mydata/val")
    assert data.sources.looks_like_hub_id("ylecun/mnist") and not data.sources.looks_like_hub_id("mnist")


@pytest.mark.parametrize(
    "encoding, read", [("cp1252", "(detected)"), ("utf-8-sig", "UTF-8 with BOM"), ("utf-16", "UTF-16")]
)
def test_csv_encodings_are_detected(tmp_path, encoding, read):
    texts = ["Le café était très bon, merci à l'équipe", "Crème brûlée – déçu, trop sucrée", "Naïve façade, œuvre"]
    pd.DataFrame({"text": texts * 4, "label": ["good", "bad", "good"] * 4}).to_csv(
        tmp_path / "x.csv", index=False, encoding=encoding
    )
    ds = load_dataset(str(tmp_path / "x.csv"))
    assert ds.inputs[:3] == texts and ds.class_names == ["bad", "good"] and read in ds.reading


def test_semicolons_and_bad_rows_are_read_with_line_numbers(tmp_path):
    (tmp_path / "eu.csv").write_text(
        'text;label\n"Un texte, avec virgule";a\nzwei;b;extra\n\n"mehrzeilig\nzweite Zeile";b\ndrei;a\n'
    )
    ds = load_dataset(str(tmp_path / "eu.csv"))
    assert ds.inputs == ["Un texte, avec virgule", "mehrzeilig\nzweite Zeile", "drei"]
    assert ds.names == ["line 2", "line 5", "line 7"] and "separator ';'" in ds.reading
    assert ds.problems == [("eu.csv line 3", "3 fields where the header has 2")]
    (tmp_path / "x.jsonl").write_text('{"text": "one"}\n{"text": "two",}\n\n["not", "an object"]\n{"text": "three"}\n')
    ds = load_dataset(str(tmp_path / "x.jsonl"))
    assert ds.inputs == ["one", "three"] and [p for p, _ in ds.problems] == ["x.jsonl line 2", "x.jsonl line 4"]
    assert "not valid JSON" in ds.problems[0][1]


def test_backslash_image_paths_and_case_insensitive_columns(tmp_path, digits_test):
    _images(tmp_path / "img" / "sub", 2, digits_test)
    pd.DataFrame({"File": ["img\\sub\\0.png", "img/sub/1.png"], "Digit": [0, 1]}).to_csv(
        tmp_path / "t.csv", index=False
    )
    ds = load_dataset(str(tmp_path / "t.csv"), image_column="file", label_column="DIGIT")
    assert len(ds) == 2 and not ds.problems and ds.chosen == {"input": "File", "label": "Digit"}
    assert ds.columns == ("File", "Digit") and np.array_equal(
        np.asarray(ds.inputs[0]), np.asarray(digits_test.inputs[0])
    )


def _truncated(folder, digits):
    """A JPEG cut at 60% and a PNG cut at 50% in folder: their headers read, their pixels do not."""
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8))
    for name, fraction in (("cut.jpg", 0.6), ("cut.png", 0.5)):
        noise.save(folder / name)
        raw = (folder / name).read_bytes()
        (folder / name).write_bytes(raw[: int(len(raw) * fraction)])


def test_truncated_images_are_skipped_by_runs_and_listed(tmp_path, digits_test, digits_vit, capsys):
    import headscope
    from runs import Store, sample

    for i in range(30):
        _images(tmp_path / "data" / str(digits_test.labels[i]), 1, digits_test, start=i)
    _truncated(tmp_path / "data" / "3", digits_test)
    ds = load_dataset(str(tmp_path / "data"))
    assert len(ds) == 32 and not ds.problems  # the headers read
    run = sample("predictions", digits_vit, ds, None, batch_size=8)
    assert len(run.arrays()["row"]) == 30 and run.manifest.n_inputs == 32
    assert [n for n, _ in run.manifest.skipped] == ["3/cut.jpg", "3/cut.png"]
    assert [n for n, _ in ds.problems] == ["3/cut.jpg", "3/cut.png"] and "truncated" in ds.problems[0][1]
    labels = np.asarray(run.arrays()["label"])
    assert (run.arrays()["top_classes"][:, 0] == labels).mean() > 0.9  # the other 30 are scored as usual
    store = tmp_path / "store"
    args = ["precompute", "--model", "digits-vit", "--dataset", str(tmp_path / "data"), "--store", str(store)]
    assert headscope.main([*args, "--analyses", "predictions,importance", "--batch-size", "8"]) == 0
    for stored in Store(store).runs():
        m = stored.manifest
        assert m.state == "done" and m.done_inputs == 32 and len(stored.arrays()["row"]) == 30
        assert [n for n, _ in m.skipped] == ["3/cut.jpg", "3/cut.png"]
        assert len(stored.tables()["inputs"]) == 30
    capsys.readouterr()
    assert headscope.main(["runs", "show", m.key, "--store", str(store)]) == 0
    assert "  skipped 3/cut.jpg: " in capsys.readouterr().out


def test_the_command_line_chooses_columns(tmp_path, digits_test, capsys):
    import headscope
    from runs import Store

    _images(tmp_path / "scans", 16, digits_test)
    pd.DataFrame({"Scan": [f"scans/{i}.png" for i in range(16)], "Digit": digits_test.labels[:16]}).to_csv(
        tmp_path / "t.csv", index=False
    )
    args = ["precompute", "--model", "digits-vit", "--dataset", str(tmp_path / "t.csv"), "--analyses", "predictions"]
    assert headscope.main([*args, "--store", str(tmp_path / "a"), "--label-column", "digit"]) == 0
    [run] = Store(tmp_path / "a").runs()
    assert np.array_equal(run.arrays()["label"], digits_test.labels[:16])  # the files' order: the table's
    assert headscope.main([*args, "--store", str(tmp_path / "b"), "--image-column", "digit"]) == 2
    assert "has no usable rows" in capsys.readouterr().err
    assert headscope.main([*args, "--store", str(tmp_path / "b"), "--text-column", "nope"]) == 2
    assert "no text column 'nope'; its columns are: Scan, Digit" in capsys.readouterr().err


def test_which_classlabel_column_of_a_datasets_folder(tmp_path, digits_test):
    import datasets

    feats = datasets.Features(
        {
            "img": datasets.Image(),
            "coarse": datasets.ClassLabel(names=["small", "large"]),
            "Fine": datasets.ClassLabel(names=[str(i) for i in range(10)]),
        }
    )
    y = [int(v) for v in digits_test.labels[:12]]
    datasets.Dataset.from_dict(
        {"img": list(digits_test.inputs[:12]), "coarse": [int(v >= 5) for v in y], "Fine": y}, features=feats
    ).save_to_disk(str(tmp_path / "hf"))
    ds = load_dataset(str(tmp_path / "hf"))
    assert ds.class_names == ["small", "large"] and ds.chosen == {"input": "img", "label": "coarse"}
    assert ds.columns == ("img", "coarse", "Fine") and "label column 'coarse' (ClassLabel)" in ds.reading
    fine = load_dataset(str(tmp_path / "hf"), label_column="FINE")
    assert fine.chosen["label"] == "Fine" and fine.labels.tolist() == y
    assert not load_dataset(str(tmp_path / "hf"), label_column="").labelled
    with pytest.raises(DatasetError, match="column 'coarse' holds ClassLabel, not images"):
        load_dataset(str(tmp_path / "hf"), image_column="coarse")
    with pytest.raises(DatasetError, match="column 'Fine' holds ClassLabel, not texts"):
        load_dataset(str(tmp_path / "hf"), text_column="fine")


def test_imagenet_wnid_and_one_based_folders_and_ambiguous_names(tmp_path, digits_test):
    from data.labels import imagenet_classes

    table = imagenet_classes()
    assert len(table) == 1000 and len({w for w, _ in table}) == 1000
    assert table[0] == ("n01440764", "tench, Tinca tinca") and table[281] == ("n02123045", "tabby, tabby cat")
    model = [names for _, names in table]  # an ImageNet classifier's id2label
    for cls in ("n02123045", "n01440764", "n02012849", "crane", "cardigan", "tabby"):
        _images(tmp_path / "val" / cls, 1, digits_test)
    ds = load_dataset(str(tmp_path / "val"))
    m = match_labels(model, ds.class_names)
    assert dict(zip(ds.class_names, m.mapping.tolist())) == {
        "cardigan": -1,  # a sweater (474), and a synonym of the Cardigan corgi (264)
        "crane": -1,  # the bird (134) and the machine (517)
        "n01440764": 0,
        "n02012849": 134,  # the crane bird, by its WordNet id
        "n02123045": 281,
        "tabby": 281,
    }
    assert m.ambiguous == (("cardigan", (264, 474)), ("crane", (134, 517)))
    assert m.how[ds.class_names.index("n02012849")] == "wnid"
    fine_tuned = match_labels(["tench, Tinca tinca", "tabby, tabby cat"], ["n02123045", "n01440764"])
    assert fine_tuned.mapping.tolist() == [1, 0]  # another index: by the synset's names
    ten = [f"class {i}" for i in range(10)]
    one_based = match_labels(ten, [str(i) for i in range(1, 11)])
    assert one_based.mapping.tolist() == list(range(10)) and set(one_based.how) == {"id (one-based)"}
    assert match_labels(ten, ["0", "3", "9"]).mapping.tolist() == [0, 3, 9]  # zero-based when all are < 10


def test_twelve_bit_scans_in_sixteen_bit_pngs_score_as_the_eight_bit_ones(tmp_path, digits_test, digits_vit):
    for i in range(60):
        scan = np.asarray(digits_test.inputs[i], dtype=np.float64) / 255 * 4095  # a 12-bit sensor's values
        (tmp_path / str(digits_test.labels[i])).mkdir(exist_ok=True)
        Image.fromarray(scan.round().astype(np.uint16)).save(tmp_path / str(digits_test.labels[i]) / f"{i}.png")
    ds = load_dataset(str(tmp_path))
    mapped = match_labels(digits_vit.spec.class_names, ds.class_names).to_model(ds.labels)
    rows = _bundled_rows(ds)
    acc = accuracy(predict(digits_vit, ds.inputs), mapped)
    ref = digits_test.subset(rows)
    assert acc == pytest.approx(accuracy(predict(digits_vit, ref.inputs), ref.labels), abs=0.02)
    assert acc > 0.9
