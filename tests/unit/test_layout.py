"""The house rules of docs/architecture.md, checked on the source: data flows one way and no module imports
itself back through others (imports inside functions count too)."""

import ast
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("data", "models", "analysis", "runs", "ui")
LOWER = {"data": set(), "models": {"data"}, "analysis": {"data", "models"}, "runs": {"data", "models", "analysis"}}


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            out[name] = path
    return out


def _imports(path: Path, known: dict[str, Path]) -> set[str]:
    """Every first-party module (or package) `path` imports, anywhere in the file; plus 'streamlit'."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found |= {n for n in names if n in known or n.split(".")[0] == "streamlit"}
    return {"streamlit" if n.startswith("streamlit") else n for n in found}


def test_no_import_cycles():
    known = _modules()
    graph = {m: _imports(p, known) - {"streamlit"} for m, p in known.items()}
    cycles = []

    def visit(start: str, node: str, path: list[str]) -> None:
        for dep in graph.get(node, ()):
            if dep == start:
                cycles.append(path)
            elif dep not in path and len(path) < 8:
                visit(start, dep, [*path, dep])

    for module in graph:
        visit(module, module, [module])
    assert not cycles, f"import cycles: {sorted({' -> '.join(sorted(set(c))) for c in cycles})}"


def test_data_flows_one_way():
    """data -> models -> analysis -> runs -> ui: a lower package never imports a higher one, or streamlit."""
    known = _modules()
    wrong = []
    for module, path in known.items():
        package = module.split(".")[0]
        if package not in LOWER:
            continue
        for dep in _imports(path, known):
            top = dep.split(".")[0]
            if top != package and (top == "streamlit" or top not in LOWER[package]):
                wrong.append(f"{module} imports {dep}")
    assert not wrong, wrong


def test_the_app_is_served_for_a_lecture_room():
    """.streamlit/config.toml: this machine only by default (a documented switch serves a class), no traceback or
    developer menu in the browser."""
    import tomllib

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "localhost"
    assert config["client"] == {"showErrorDetails": "none"}  # toolbar "auto": no developer menu for students
    assert "--server.address 0.0.0.0" in (ROOT / "README.md").read_text()


def _requirements_script():
    """scripts/requirements.py as a module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("requirements_script", ROOT / "scripts" / "requirements.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_every_dependency_has_a_floor_inside_its_range():
    """scripts/floors.sh installs name==floor of each direct dependency (scripts/requirements.py --floors): each
    must have one, and pyproject.toml's range must allow it."""
    from packaging.specifiers import SpecifierSet

    script = _requirements_script()
    floors = [line.split("==") for line in script.floors()]
    ranges = script.dependencies()
    assert [name for name, _ in floors] == [name for name, _ in ranges]
    outside = [f"{name}=={v} not in {r}" for (name, v), (_, r) in zip(floors, ranges) if v not in SpecifierSet(r)]
    assert not outside, outside


def test_requirements_txt_is_in_step_with_pyproject():
    """requirements.txt (what `pip install -r requirements.txt && streamlit run app.py` installs) pins exactly the
    direct dependencies of pyproject.toml, torch first, each pin inside pyproject.toml's own range."""
    from packaging.specifiers import SpecifierSet

    script = _requirements_script()
    pins = [line.split("==") for line in (ROOT / "requirements.txt").read_text().splitlines() if "==" in line]
    wanted = script.dependencies()
    assert [name for name, _ in pins] == [name for name, _ in wanted], "run python scripts/requirements.py"
    assert pins[0] == ["torch", "2.13.0"]
    outside = [f"{name}=={v} not in {r}" for (name, v), (_, r) in zip(pins, wanted) if v not in SpecifierSet(r)]
    assert not outside, outside


@pytest.mark.slow
def test_the_wheel_carries_the_library_and_the_command_not_the_app(tmp_path):
    """`pip install .` (a wheel) installs the packages, headscope.py, their data (the built-in checkpoints among it)
    and the `headscope` command, and not the app (app.py, pages/, tours/), which runs from a checkout, as the README
    says: from another folder the installed command computes a run of a built-in model, and `headscope app` says
    where the app runs."""
    import shutil
    import subprocess
    import sys
    import zipfile

    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    src = tmp_path / "src"  # a copy, so the build leaves nothing in the checkout
    for name in tracked:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, src / name)
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", tmp_path / "dist", src], check=True)
    [wheel] = (tmp_path / "dist").glob("headscope-*.whl")
    files = zipfile.ZipFile(wheel).namelist()
    library = {f for f in tracked if f.split("/")[0] in PACKAGES and "/" in f} | {"headscope.py"}
    assert {f for f in files if ".dist-info/" not in f} == library
    entry = next(f for f in files if f.endswith(".dist-info/entry_points.txt"))
    assert "headscope = headscope:main" in zipfile.ZipFile(wheel).read(entry).decode()

    subprocess.run([*pip, "install", "--no-deps", "--target", tmp_path / "site", wheel], check=True)
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}  # the installed copy, not this checkout

    def headscope(*args: str) -> subprocess.CompletedProcess:
        command = [tmp_path / "site" / "bin" / "headscope", *args]
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)

    assert headscope("--help").returncode == 0
    app = headscope("app")
    assert app.returncode == 2 and "the app runs from a checkout" in app.stderr, app.stderr
    run = headscope("precompute", "--model", "digits-vit", "--dataset", "digits", "--n", "8", "--store", "store")
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "store" / run.stdout.split()[0] / "arrays").is_dir()  # a finished run


def test_every_relative_link_in_the_docs_resolves_to_a_file():
    """Every relative link [text](target) of README.md and the other Markdown files (docs/, tours/, ...) names a file
    or folder of the repository (an anchor after # is not checked)."""
    import re

    folders = [d for d in ROOT.iterdir() if d.is_dir() and not d.name.startswith(".")]  # not .venv
    pages = [ROOT / "README.md", *sorted(p for d in folders for p in d.rglob("*.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            path = target.split("#")[0]
            if path and not re.match(r"[a-z]+:", path) and not (page.parent / path).exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken, broken


def test_the_readmes_layout_names_every_file_once_and_no_other():
    """README.md's Layout block: each folder's entry names each of that folder's files exactly once (the packages,
    analysis/units, pages and scripts; __init__.py and the checkpoints aside), and no file that is not there."""
    import re
    import subprocess

    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Layout", 1)[1].split("```")[1]
    entries: dict[str, str] = {}
    for line in block.strip().splitlines():
        if not line.startswith(" "):
            folder, _, line = line.partition(" ")
            entries[folder] = ""
        entries[folder] += " " + line
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    wrong = []
    for folder in [*(f"{p}/" for p in PACKAGES), "analysis/units/", "pages/", "scripts/"]:
        files = {f.removeprefix(folder) for f in tracked if f.startswith(folder) and "/" not in f.removeprefix(folder)}
        files.discard("__init__.py")
        text = entries.get(folder, "")
        for name in sorted(files):
            count = len(re.findall(rf"(?<![\w./]){re.escape(name)}(?!\w)", text))
            if count != 1:
                wrong.append(f"{folder}{name} named {count} times")
        named = set(re.findall(r"(?<![\w./])(\w+\.(?:py|js|css|tsv|sh))(?!\w)", text))
        wrong += [f"{folder}{name} named but not there" for name in sorted(named - files)]
    assert not wrong, wrong
