"""pyproject.toml declares what the code imports: the service's runtime dependencies are exactly the packages
service/ imports at module level; what it imports only inside a function (an optional backend) is in an extra;
the harness and the scenarios bring theirs in the `harness` extra, the notebooks' models in `research`.

Import names are mapped to distributions with importlib.metadata.packages_distributions(), so a package whose
import name differs from its distribution's (yaml / PyYAML, PIL / pillow) is matched as pip would install it."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
FIRST_PARTY = {"service", "harness", "scenarios", "tests", "features"}
# Optional packages not installed by `pip install -e '.[dev]'`, so packages_distributions() cannot name them.
NOT_INSTALLED = {"pyln": "pyln-client"}  # the CLN backend (`cln` extra), for those who run Core Lightning


@dataclass(frozen=True)
class Import:
    module: str  # the top-level name, e.g. "flask" for `from flask.json import dumps`
    where: str  # path:line
    module_level: bool  # False: inside a function, imported only when that code runs


def normalise(name: str) -> str:
    """PEP 503: Flask, flask and FLASK are one distribution; so are pyln_client and pyln-client."""
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(extra: str | None = None) -> set[str]:
    """Distributions `pip install .` (extra None) or `pip install '.[extra]'` asks for directly, following the
    extras' references to this project's other extras (`volta-lightning[harness]`)."""
    requirements = [Requirement(text) for text in PROJECT["dependencies"]]
    if extra is not None:
        requirements += [Requirement(text) for text in PROJECT["optional-dependencies"][extra]]
    names: set[str] = set()
    for requirement in requirements:
        if normalise(requirement.name) == normalise(PROJECT["name"]):
            for included in requirement.extras:
                names |= declared(included)
        else:
            names.add(normalise(requirement.name))
    return names


def imports(folder: str, skip: tuple[str, ...] = ()) -> Iterator[Import]:
    """Every import of a third-party package in the folder's Python files."""
    for path in sorted((ROOT / folder).rglob("*.py")):
        if path.name in skip:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for node, module_level in _walk(tree, module_level=True):
            for name in _imported_names(node):
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in FIRST_PARTY and top != "__future__":
                    yield Import(top, f"{path.relative_to(ROOT)}:{node.lineno}", module_level)


def _walk(node: ast.AST, module_level: bool) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child, module_level
        inside = module_level and not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        yield from _walk(child, inside)


def _imported_names(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    return [node.module] if node.module and node.level == 0 else []  # level > 0: a relative, first-party import


@cache
def installed_packages() -> dict[str, list[str]]:
    return packages_distributions()  # reads every installed distribution's file list: once


def distributions(module: str) -> frozenset[str]:
    if module in NOT_INSTALLED:
        return frozenset({NOT_INSTALLED[module]})
    found = installed_packages().get(module)
    assert found, f"{module} is imported but no installed distribution provides it: declare it and install it"
    return frozenset(normalise(name) for name in found)


def undeclared(found: list[Import], allowed: set[str]) -> list[str]:
    return [f"{item.where}: {item.module} ({', '.join(sorted(distributions(item.module)))})"
            for item in found if not distributions(item.module) & allowed]


def all_extras() -> set[str]:
    names: set[str] = set()
    for extra in PROJECT["optional-dependencies"]:
        names |= declared(extra)
    return names


def test_what_the_service_imports_at_module_level_is_a_runtime_dependency() -> None:
    found = [item for item in imports("service") if item.module_level]
    assert found, "the walk found no imports at all: the test would pass for the wrong reason"
    missing = undeclared(found, declared())
    assert not missing, f"add these to [project] dependencies: {missing}"


def test_what_the_service_imports_only_when_used_is_in_an_extra() -> None:
    optional = [item for item in imports("service") if not item.module_level]
    assert {item.module for item in optional} >= {"redis", "pyln"}  # Redis (production) and CLN (cln)
    missing = undeclared(optional, declared() | all_extras())
    assert not missing, f"add these to an extra: {missing}"


def test_every_runtime_dependency_is_imported_by_the_service() -> None:
    """Nothing the harness, the notebooks or the tests need rides along when the service is installed."""
    used = set().union(*(distributions(item.module) for item in imports("service") if item.module_level))
    assert declared() - used == set(), "not imported by service/: move these to the extra that needs them"


def test_the_harness_needs_only_the_harness_extra_at_module_level() -> None:
    # pytest loads harness/pytest_plugin.py itself, and only the browser tests start harness/nostr.py's wallet
    # service: their packages come with the dev extra.
    found = [item for item in imports("harness", skip=("pytest_plugin.py", "nostr.py")) if item.module_level]
    missing = undeclared(found, declared("harness"))
    assert not missing, f"add these to the `harness` extra: {missing}"


def test_the_scenarios_need_only_the_harness_and_research_extras_at_module_level() -> None:
    """Scenario files run from `volta-harness scenario`; the notebooks' models live beside them."""
    found = [item for item in imports("scenarios") if item.module_level]
    missing = undeclared(found, declared("harness") | declared("research"))
    assert not missing, f"add these to the `harness` or the `research` extra: {missing}"


@pytest.mark.parametrize("folder", ["harness", "scenarios", "tests", "features"])
def test_the_dev_extra_installs_everything_imported_anywhere(folder: str) -> None:
    """`make setup` runs `pip install -e '.[dev]'`: every package any module imports, directly declared."""
    missing = undeclared(list(imports(folder)), declared("dev") | all_extras())
    assert not missing, f"add these to the `dev` extra: {missing}"


def test_the_research_extra_runs_the_notebooks() -> None:
    notebook_imports = set()
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for line in re.findall(r"^\s*(?:from|import) ([A-Za-z_][A-Za-z0-9_]*)", _code_of(path), flags=re.M):
            if line not in sys.stdlib_module_names and line not in FIRST_PARTY:
                notebook_imports.add(line)
    missing = {module for module in notebook_imports if not distributions(module) & declared("research")}
    assert not missing, f"notebooks import {sorted(missing)}: add them to the `research` extra"


def _code_of(notebook: Path) -> str:
    import json

    cells = json.loads(notebook.read_text())["cells"]
    return "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "code")


def test_the_command_line_entry_points_are_declared() -> None:
    assert PROJECT["scripts"] == {"volta-harness": "harness.cli:main", "volta-service": "service.cli:main"}
