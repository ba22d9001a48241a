"""HeadScope's command line: precompute dataset-scale runs, manage the store, start the app.

    headscope precompute --model digits-vit --dataset digits --analyses importance,relevance
    headscope runs [list | show KEY | delete KEY | export KEY --to DIR | verify [KEY]]
    headscope app [streamlit options]

(`python -m headscope` is the same command.)

The work lives in runs/ (the store and the jobs); this module only parses arguments and prints.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
STORE_HELP = "the store folder (default: $HEADSCOPE_STORE, else $HEADSCOPE_HOME/runs; HEADSCOPE_HOME: ~/.headscope)"


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def flag(option: str) -> str:
    """The command-line flag of a unit option: batch_size -> --batch-size."""
    return "--" + option.replace("_", "-")


def option_args(options) -> list[str]:
    """The command-line words of unit options ((name, value) pairs) as `precompute` reads them back: a list as
    A,B, a bool as --name / --no-name."""
    words = []
    for name, value in options:
        if isinstance(value, bool):
            words.append(flag(name) if value else flag(f"no_{name}"))
        else:
            words += [flag(name), _shown(tuple(value) if isinstance(value, list) else value)]
    return words


def _option_flags(group) -> None:
    """One flag per option of the units (analysis.units), generated from their Options fields: `--methods`
    applies to every analysis that has `methods`. Flags not given are left to each unit's default."""
    import typing

    from analysis.options import value_type

    seen: dict[str, tuple] = {}  # option -> (its field, its type, the analyses that have it)
    units = _units()
    for name, unit in units.items():
        hints = typing.get_type_hints(unit.Options)
        for f in unit.Options.fields():
            seen.setdefault(f.name, (f, hints[f.name], []))[2].append(name)
    for name, (f, hint, analyses) in seen.items():
        (one, many, _), choices = value_type(hint), f.metadata.get("choices")
        kind: dict
        if many:
            kind = {"type": _split, "metavar": "A,B,..."}
        elif one is bool:
            kind = {"action": argparse.BooleanOptionalAction}
        elif choices is not None:
            kind = {"choices": list(choices)}
        else:
            kind = {"type": one, "metavar": name.upper()}
        default = "" if f.default is None else f" (default {_shown(f.default)})"
        listed = f"; from {', '.join(map(str, choices))}" if choices is not None and many else ""
        where = "every analysis" if len(analyses) == len(units) else ", ".join(analyses)
        group.add_argument(
            flag(name),
            dest=f"option_{name}",
            default=argparse.SUPPRESS,
            help=f"{where}: {f.metadata['doc']}{listed}{default}",
            **kind,
        )


def _units() -> dict:
    from analysis.units import UNITS

    return UNITS


def _shown(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def _parser(analyses: bool = True) -> argparse.ArgumentParser:
    """The command line; analyses=False leaves out what needs the analysis units (torch and the models, seconds
    to import): precompute's list of analyses and their options, for every command but precompute."""
    p = argparse.ArgumentParser(
        prog="headscope", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="command", required=True)
    pre = sub.add_parser(
        "precompute",
        help="run analyses over a whole dataset (or a sample) into the store",
        description="Run analyses over a dataset chunk by chunk into the store. A run with the same "
        "key (model weights, dataset files, analysis, parameters) is reused; a killed "
        "run resumes from its last finished chunk.",
    )
    pre.add_argument(
        "--model",
        required=True,
        help="a built-in name (digits-vit, shapes-vit, minilm), a folder saved "
        "with save_pretrained, or a hub id in your cache",
    )
    pre.add_argument(
        "--dataset",
        required=True,
        help="a bundled name (digits, shapes, prose), an image folder, a "
        ".csv/.tsv/.jsonl/.parquet table, a datasets folder or hub id",
    )
    pre.add_argument(
        "--split",
        default=None,
        help="the dataset's split (default: test, validation or val when present, else the only one)",
    )
    for kind, what in (("text", "texts"), ("image", "image files"), ("label", "class names or ids")):
        pre.add_argument(
            f"--{kind}-column",
            default=None,
            metavar="NAME",
            help=f"a table's or datasets dataset's column of {what}, any case (default: the detected one)"
            + ("; '' for no labels" if kind == "label" else ""),
        )
    listed = "; ".join(f"{k} ({u.description})" for k, u in _units().items()) if analyses else "see precompute -h"
    pre.add_argument("--analyses", default="importance", type=_split, help=f"comma-separated, from: {listed}")
    pre.add_argument(
        "--n",
        type=int,
        default=None,
        help="inputs to analyse (default: all; else the dataset's seeded sample of n, as the app's views use)",
    )
    pre.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    pre.add_argument("--store", default=None, help=STORE_HELP)
    pre.add_argument("--force", action="store_true", help="recompute even if a finished run has the same key")
    pre.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (per worker with --ray; default: torch's own choice here, 1 per Ray CPU worker)",
    )
    if analyses:
        _option_flags(pre.add_argument_group("the analyses' options (each goes to the analyses that have it)"))
    scale = pre.add_argument_group("scale out on Ray (see docs/ray.md)")
    scale.add_argument(
        "--ray",
        metavar="local|auto|ADDRESS",
        default=None,
        help="compute the chunks on Ray workers: 'local' starts Ray on this machine, 'auto' or "
        "host:port joins a running cluster; results and keys are those of a run without --ray",
    )
    scale.add_argument(
        "--workers",
        type=int,
        default=None,
        help="Ray workers (default: one per GPU of the cluster, else one per --threads CPUs)",
    )
    scale.add_argument(
        "--retries", type=int, default=2, help="attempts after the first before a shard is given up (default 2)"
    )

    runs = sub.add_parser("runs", help="list, show, delete, export or verify stored runs")
    runs.add_argument("action", nargs="?", default="list", choices=["list", "show", "delete", "export", "verify"])
    runs.add_argument("key", nargs="?", help="the run's key (first column of `runs list`)")
    runs.add_argument("--to", default=None, help="export: the folder to write CSV tables and NPZ arrays to")
    runs.add_argument("--store", default=None, help=STORE_HELP)

    sub.add_parser("app", help="start the app (= streamlit run app.py); extra options go to streamlit", add_help=False)
    return p


def _fail(message: str) -> int:
    print(f"headscope: error: {message}", file=sys.stderr)
    return 2


def _precompute(args) -> int:
    from tqdm import tqdm

    from analysis.attribution import RelevanceError
    from data import DatasetError
    from models import ModelLoadError
    from runs import StoreError, precompute
    from runs.cluster import ClusterError, ShardsFailed

    if min(v for v in (args.n, args.threads, args.workers, 1) if v is not None) < 1:
        return _fail("--n, --threads and --workers must be at least 1.")
    if args.retries < 0:
        return _fail("--retries must be 0 or more.")
    bars = []

    def progress(manifest):
        bar = tqdm(desc=manifest.analysis, unit="input", file=sys.stderr, dynamic_ncols=True)
        bars.append(bar)
        if manifest.workers:
            bar.write(
                f"{manifest.analysis}: {manifest.n_chunks} shards of {manifest.chunk_size} inputs on "
                f"{manifest.workers}",
                file=sys.stderr,
            )

        def update(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.set_postfix_str(f"shards {manifest.chunks_done(done)}/{manifest.n_chunks}", refresh=False)
            bar.refresh()
            if done >= total:
                bar.close()

        return update

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # Cancel from the app: the run is marked cancelled
    try:
        runs = precompute(
            args.model,
            args.dataset,
            args.split,
            args.analyses,
            args.n,
            args.device,
            args.store,
            args.force,
            progress,
            threads=args.threads,
            ray=args.ray,
            workers=args.workers,
            retries=args.retries,
            columns={
                f"{kind}_column": getattr(args, f"{kind}_column")
                for kind in ("text", "image", "label")
                if getattr(args, f"{kind}_column") is not None
            },
            **{k.removeprefix("option_"): v for k, v in vars(args).items() if k.startswith("option_")},
        )
    except (ModelLoadError, DatasetError, RelevanceError, ClusterError, ValueError, TypeError) as e:
        return _fail(re.sub(r"[Oo]ptions? '(\w+)'", lambda m: flag(m.group(1)), str(e)))
    except KeyboardInterrupt:
        for bar in bars:  # the progress bars' last lines first, then the one line that says what happened
            bar.close()
        print("headscope: cancelled; rerun the same command to resume from its finished chunks.", file=sys.stderr)
        return 130
    except ShardsFailed as e:
        print(
            f"headscope: {len(e.failures)} shard(s) failed after {args.retries} retries; the other shards are "
            "stored, and a rerun computes only these:",
            file=sys.stderr,
        )
        for name, error in e.failures:
            print(f"  {name}: {error}", file=sys.stderr)
        return 1
    except StoreError as e:
        print(f"headscope: {e}", file=sys.stderr)
        return 1
    finally:
        for bar in bars:
            bar.close()
    for run in runs:
        m = run.manifest
        print(f"{m.key}\t{m.analysis}\t{m.n_inputs} inputs\t{run.root}")
    return 0


def _runs(args) -> int:
    import numpy as np
    import pandas as pd

    from runs import Store, StoreError

    store = Store(args.store)
    if args.action == "list":
        index = store.index()
        if index.empty:
            print(f"No runs in {' or '.join(map(str, store.folders))}.")
        else:
            with pd.option_context("display.width", 200, "display.max_columns", 20):
                print(index.drop(columns=["params"]).to_string(index=False))
        return 0
    if args.action == "verify":
        return _verify(store, args.key)
    if not args.key:
        return _fail(f"`runs {args.action}` needs a run key (see `headscope runs list`).")
    run = store.run(args.key)
    try:
        m = run.manifest
        if args.action == "show":
            print(
                f"{m.key}: {m.analysis} of {m.model} on {m.dataset} ({m.split}), {m.done_inputs}/{m.n_inputs} inputs, "
                f"{m.state}\nparameters: {m.params}\nfolder: {run.root}"
            )
            for name, why in m.skipped:
                print(f"  skipped {name}: {why}")
            if m.state == "done":
                for name, a in run.arrays().items():
                    print(f"  arrays/{name}.npy  {a.dtype} {list(a.shape)}")
                for name, t in run.tables().items():
                    print(f"  tables/{name}.parquet  {len(t)} rows: {', '.join(map(str, t.columns))}")
        elif args.action == "delete":
            store.delete(args.key)
            print(f"Deleted {args.key}.")
        else:
            if m.state != "done":
                return _fail(f"run {args.key} is {m.state}; only finished runs can be exported.")
            out = Path(args.to or f"{args.key}-export")
            try:
                out.mkdir(parents=True, exist_ok=True)
                for name, t in run.tables().items():
                    t.to_csv(out / f"{name}.csv", index=False)
                named: dict[str, Any] = {k: np.asarray(v) for k, v in run.arrays().items()}
                np.savez_compressed(out / "arrays.npz", **named)
            except OSError as e:
                return _fail(f"could not export to {out}/ ({e.strerror or e}).")
            print(f"Exported {args.key} to {out}/ (CSV tables, arrays.npz).")
    except StoreError as e:
        return _fail(str(e))
    return 0


def _verify(store, key: str | None) -> int:
    """Check every finished run (or the run `key`) against the checksums it recorded: one line each; exit 1 when
    one is damaged (a rerun of it computes it again)."""
    from runs import StoreError

    runs = [store.run(key)] if key else store.runs()
    damaged = 0
    for run in runs:
        try:
            m = run.manifest
        except StoreError as e:
            print(f"{run.root.name}\tunreadable: {e}")
            damaged += 1
            continue
        if m.state != "done":
            print(f"{m.key}\t{m.state} (not finished: nothing to verify)")
            continue
        problems = run.damage()
        damaged += bool(problems)
        print(f"{m.key}\t{'damaged: ' + '; '.join(problems) if problems else 'ok'}")
    return 1 if damaged else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["app"]:
        if not (ROOT / "app.py").is_file():  # an installed wheel carries the library and this command, not the app
            return _fail(
                "the app runs from a checkout of HeadScope: clone it, then in its folder `pip install -r "
                "requirements.txt && streamlit run app.py` (this install has the library, precompute and runs)."
            )
        return subprocess.call([sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), *argv[1:]])
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    args = _parser(analyses=argv[:1] == ["precompute"]).parse_args(argv)
    return _precompute(args) if args.command == "precompute" else _runs(args)


if __name__ == "__main__":
    sys.exit(main())
