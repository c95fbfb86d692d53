"""No import cycle between the project's modules (lazy imports inside functions count too: they hide a
cycle rather than remove it). Imports under `if TYPE_CHECKING:` are only for annotations and do not count,
nor does a module importing a package that contains it (Python runs that package first anyway). And the domain
imports nothing of the project but itself."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("service", "harness", "scenarios")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_package_init(path: Path) -> bool:
    return path.name == "__init__.py"


def project_modules() -> dict[str, Path]:
    return {module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")}


def imported_names(source: str, module: str, annotations: bool = True, is_package: bool = False) -> set[str]:
    """Every module `source` names in an import, anywhere (inside functions too; under `if TYPE_CHECKING:` only
    with `annotations`), relative imports resolved against `module` (a package's `__init__` when `is_package`);
    `from a import b` as both `a` and `a.b`."""
    tree = ast.parse(source)
    skipped = set() if annotations else {id(node) for block in ast.walk(tree) if _is_type_checking_block(block)
                                         for node in ast.walk(block)}
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            package = _resolved(node, module, is_package)
            names |= {package, *(f"{package}.{alias.name}" for alias in node.names)}
    return names


def _resolved(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    package = parts if is_package else parts[:-1]  # `.` is the module's own package
    base = package[:len(package) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules `path` imports at run time (annotations only for the type checker do not count)."""
    names = imported_names(path.read_text(), module_name(path), annotations=False, is_package=is_package_init(path))
    return {name for name in names if name in modules}


def _is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    graph = {}
    for name, path in modules.items():
        graph[name] = {target for target in imports_of(path, modules)
                       if target != name and not name.startswith(target + ".")}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target):], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_no_import_cycle_between_project_modules() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


# -- the domain's layer -------------------------------------------------------------------------------------------

DOMAIN = "service.domain"


def outside_the_domain(names: set[str]) -> set[str]:
    """The project modules named outside `service.domain`: the domain knows nothing of Flask, storage,
    Starknet, the Lightning backends or the configuration; it owns the ports they implement."""
    project = tuple(f"{package}." for package in PACKAGES)
    return {name for name in names
            if name.startswith(project) and not (name == DOMAIN or name.startswith(DOMAIN + "."))}


def test_the_domain_imports_nothing_of_the_project_but_itself() -> None:
    for path in sorted((ROOT / "service" / "domain").rglob("*.py")):
        module = module_name(path)
        reached = outside_the_domain(imported_names(path.read_text(), module, is_package=is_package_init(path)))
        assert not reached, f"{module} imports {sorted(reached)}: give the domain a port or a value of its own"


def test_the_layer_check_catches_every_way_of_reaching_out() -> None:
    module = "service.domain.settlement"
    for line in ("from service.config import Settings", "import service.lightning.base",
                 "from service import config", "from .. import config", "from ..lightning.base import X",
                 "from harness.network import Network", "def f():\n    from service.storage import orders",
                 "if TYPE_CHECKING:\n    from service.config import Settings"):
        assert outside_the_domain(imported_names(line, module)), line
    for line in ("from service.domain.ports import OrderStore", "from . import states", "from .pricing import Price",
                 "import pydantic"):
        assert not outside_the_domain(imported_names(line, module)), line
    # In the domain package's own __init__, `.` is the domain and `..` the service.
    assert not outside_the_domain(imported_names("from . import states", DOMAIN, is_package=True))
    assert outside_the_domain(imported_names("from .. import config", DOMAIN, is_package=True))
