"""Each extra of pyproject.toml covers what its part of the repository imports.

Installing exactly an extra (``pip install -e .[test]``) must be enough to
collect and run that part: a test that imports a package only some other
extra brings fails at collection on a clean machine.  The imports are read
from the source (``ast``), mapped to distributions through the installed
metadata, and compared with the extra's requirements plus everything those
(and mcfields' own dependencies) pull in.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
EXTRAS: dict[str, list[str]] = PROJECT["optional-dependencies"]

# Which files each extra is for.  The core (no extra) is mcfields itself
# without its optional integrations.
PARTS: dict[str, list[str]] = {
    "test": ["tests", "testproject", "manage.py"],
    "bench": ["bench"],
    "drf": ["mcfields/drf.py"],
    "": ["mcfields"],
}
# Files of the core that belong to an extra instead.
OPTIONAL_IN_CORE = {"mcfields/drf.py"}
# Modules provided by the database backends Django loads by name
# (ENGINE = "django.db.backends.postgresql" imports psycopg).
BACKEND_MODULES = {"postgres": {"psycopg"}}


def _canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _python_files(paths: Iterable[str]) -> list[Path]:
    files: list[Path] = []
    for rel in paths:
        path = ROOT / rel
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files.extend(p for p in path.rglob("*.py") if "migrations" not in p.parts)
    return files


def _is_local(module: str, source: Path) -> bool:
    """A module of this repository (a package, or a sibling script/helper)."""
    for base in (ROOT, source.parent):
        if (base / f"{module}.py").exists() or (base / module / "__init__.py").exists():
            return True
        if (base / module).is_dir() and base == ROOT:
            return True
    return False


def third_party_imports(files: Iterable[Path]) -> dict[str, set[str]]:
    """Top-level module -> files importing it, stdlib and local modules left out."""
    found: dict[str, set[str]] = {}
    for path in files:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or _is_local(top, path):
                    continue
                found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def _distributions_of(module: str) -> set[str]:
    return {_canon(d) for d in metadata.packages_distributions().get(module, [])}


def _closure(requirements: Iterable[str]) -> set[str]:
    """The distributions ``requirements`` install, with their dependencies."""
    seen: set[str] = set()
    todo = [(Requirement(r), "") for r in requirements]
    while todo:
        req, parent_extra = todo.pop()
        env = {"extra": parent_extra}
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        name = _canon(req.name)
        extras = sorted(req.extras) or [""]
        key = name + "[" + ",".join(extras) + "]"
        if key in seen:
            continue
        seen.add(key)
        seen.add(name)
        try:
            requires = metadata.requires(req.name) or []
        except metadata.PackageNotFoundError:
            continue  # declared but not installed here: counts by its name
        for extra in extras:
            for text in requires:
                todo.append((Requirement(text), extra))
    return {k for k in seen if "[" not in k}


def missing(extra: str) -> dict[str, set[str]]:
    """Imports of ``extra``'s part whose distribution the extra does not bring."""
    files = [
        f for f in _python_files(PARTS[extra])
        if extra != "" or str(f.relative_to(ROOT)) not in OPTIONAL_IN_CORE
    ]
    provided = _closure([*PROJECT["dependencies"], *(EXTRAS.get(extra, []) if extra else [])])
    gaps: dict[str, set[str]] = {}
    for module, where in third_party_imports(files).items():
        dists = _distributions_of(module)
        if not dists:
            gaps[f"{module} (no installed distribution provides it)"] = where
        elif not dists & provided:
            gaps[f"{module} ({', '.join(sorted(dists))})"] = where
    return gaps


def _installed(extra: str) -> bool:
    try:
        for requirement in EXTRAS.get(extra, []):
            metadata.distribution(Requirement(requirement).name)
    except metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.parametrize("extra", sorted(PARTS))
def test_extra_covers_the_imports_of_its_part(extra: str) -> None:
    if not _installed(extra):
        # The mapping from imports to distributions needs their metadata;
        # the test matrix installs the test extra only.
        pytest.skip(f"the {extra} extra is not installed here")
    assert missing(extra) == {}, (
        f"imports not covered by the {extra or 'core'} dependencies of pyproject.toml"
    )


def test_test_extra_does_not_compile_anything() -> None:
    # pymonocypher has no wheel for every Python and then builds from source,
    # Cython included: it belongs to the bench extra only.
    names = {_canon(Requirement(r).name) for r in EXTRAS["test"]}
    assert "pymonocypher" not in names


def test_backend_extras_provide_the_driver() -> None:
    for extra, modules in BACKEND_MODULES.items():
        provided = _closure(EXTRAS[extra])
        for module in modules:
            assert _distributions_of(module) & provided, (extra, module)


def test_the_checker_sees_a_gap() -> None:
    # Control: without its requirement, an import of hypothesis is a gap.
    without = [r for r in EXTRAS["test"] if _canon(Requirement(r).name) != "hypothesis"]
    provided = _closure([*PROJECT["dependencies"], *without])
    assert _distributions_of("hypothesis") - provided == {"hypothesis"}
