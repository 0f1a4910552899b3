"""dvc.yaml's deps are true by construction: every project module a stage's entrypoint imports is a dep.

DVC reruns a stage only when one of its declared deps changes. A stage that imports a project module it does
not list keeps its old outputs after that module changes, silently. This walks the imports of each
``python -m pipelines.<stage>`` entrypoint (every ``import``/``from ... import`` in the module, lazy imports
inside functions included, transitively over the project's own modules) and checks each file is covered by a
dep (the file itself or a directory above it).
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"llmops": ROOT / "src" / "llmops", "pipelines": ROOT / "pipelines"}


def _module_file(name: str) -> Path | None:
    """The file of a project module (``llmops.x.y`` or ``pipelines.z``), or None for third-party names."""
    top, *rest = name.split(".")
    if top not in PACKAGES:
        return None
    base = PACKAGES[top].joinpath(*rest)
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def _package_of(path: Path) -> str:
    """The package a file's relative imports resolve against: its directory (for ``__init__.py`` too)."""
    for top, root in PACKAGES.items():
        if path.is_relative_to(root):
            return ".".join([top, *path.relative_to(root).parent.parts])
    raise AssertionError(path)


def _imports(path: Path) -> set[str]:
    """Module names imported anywhere in the file (relative imports resolved, ``from m import sub`` -> m.sub)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = _package_of(path).split(".")
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def _closure(entry: str) -> dict[Path, Path | None]:
    """Every project file ``python -m <entry>`` may execute (parent packages' __init__ included), each mapped to
    the file whose import first reached it (None for the entrypoint's own files): breadth first, so following the
    map back gives a shortest import chain."""
    seen: dict[Path, Path | None] = {}
    todo: list[tuple[str, Path | None]] = [(entry, None)]
    while todo:
        name, importer = todo.pop(0)
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            file = _module_file(".".join(parts[:i]))
            if file is not None and file not in seen:
                seen[file] = importer
                todo.extend((imported, file) for imported in sorted(_imports(file)))
    return seen


def _chain(file: Path, reached_from: dict[Path, Path | None]) -> str:
    """How the entrypoint reaches ``file``: ``a.py -> b.py -> file.py``."""
    links = [file]
    while (parent := reached_from[links[-1]]) is not None:
        links.append(parent)
    return " -> ".join(str(link.relative_to(ROOT)) for link in reversed(links))


def _stages() -> dict[str, dict]:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


def _inert(file: Path) -> bool:
    """A file with nothing but a docstring (and ``from __future__`` imports) cannot change a stage's output."""
    body = ast.parse(file.read_text(encoding="utf-8")).body
    return all(
        (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str))
        or (isinstance(node, ast.ImportFrom) and node.module == "__future__")
        for node in body
    )


def _covered(file: Path, deps: list[str]) -> bool:
    if _inert(file):
        return True
    rel = file.relative_to(ROOT)
    for dep in deps:
        dep_path = Path(dep.rstrip("/"))
        if rel == dep_path or dep_path in rel.parents:
            return True
    return False


STAGES = {name: stage for name, stage in _stages().items() if str(stage.get("cmd", "")).startswith("python -m ")}


def test_every_python_stage_is_checked():
    assert STAGES, "dvc.yaml has no `python -m` stages"


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_deps_cover_its_imports(stage):
    entry = STAGES[stage]["cmd"].split()[2]
    deps = [d if isinstance(d, str) else next(iter(d)) for d in STAGES[stage].get("deps", [])]
    reached_from = _closure(entry)
    missing = sorted(f for f in reached_from if not _covered(f, deps))
    assert not missing, f"stage {stage!r} imports project modules dvc.yaml does not list as deps:\n" + "\n".join(
        _chain(f, reached_from) for f in missing
    )


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_code_deps_are_imported(stage):
    """The other way round: a code dep (under src/ or pipelines/) the stage never imports only makes DVC rerun
    the stage for nothing; it is usually left over from a moved module."""
    entry = STAGES[stage]["cmd"].split()[2]
    deps = [d if isinstance(d, str) else next(iter(d)) for d in STAGES[stage].get("deps", [])]
    code = [d for d in deps if d.split("/")[0] in ("src", "pipelines")]
    files = [f for f in _closure(entry) if not _inert(f)]
    unused = [d for d in code if not any(_covered(f, [d]) and not _inert(f) for f in files)]
    assert not unused, f"stage {stage!r} lists code deps it never imports: {unused}"


def test_walker_sees_lazy_imports(tmp_path):
    """An import inside a function body (a lazy import) counts like a top-level one."""
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from llmops import errors\n    import llmops.jsonl\n    return errors\n")
    assert {"llmops", "llmops.errors", "llmops.jsonl"} <= _imports(probe)


def _outs(stage: dict) -> list[str]:
    """The stage's outputs, ``${section.key}`` filled in from params.yaml as DVC does."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))

    def fill(match: re.Match[str]) -> str:
        value: Any = params
        for part in match.group(1).split("."):
            value = value[part]
        return str(value)

    outs = [o if isinstance(o, str) else next(iter(o)) for key in ("outs", "metrics", "plots") for o in stage.get(key, [])]
    return [re.sub(r"\$\{([^}]+)\}", fill, o) for o in outs]


def test_every_stage_output_is_git_ignored_and_cleaned() -> None:
    """Stage outputs are DVC's (never git's, personal data among them) and `make clean` removes them all."""
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", "--stdin"],
        cwd=ROOT,
        # a directory out need not exist: a file inside it is ignored by the directory's pattern
        input="\n".join(f"{o}/x" for s in STAGES.values() for o in _outs(s)),
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    makefile = (ROOT / "Makefile").read_text()
    clean = set(next(block for block in makefile.split("\n\n") if block.startswith("clean:")).split())
    for stage, spec in STAGES.items():
        for out in _outs(spec):
            assert f"{out}/x" in ignored, f"stage {stage!r} output {out} is not in .gitignore"
            top = "/".join(out.split("/")[:2]) if out.startswith("data/") else out.split("/")[0]
            assert top in clean, f"stage {stage!r} output {out}: `make clean` does not remove {top}"
