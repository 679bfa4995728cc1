"""The package's layout is its design: no import cycle, dependencies pointing one way
(cli -> runs -> exporter, report, mock -> core -> gates, derive, history -> settings ->
api), and
no module over 400 lines. Read with the standard library's ast, every import counted,
those inside functions too."""

from __future__ import annotations

import ast
from pathlib import Path

import structocr_cli

PACKAGE = Path(structocr_cli.__file__).parent
LAYERS = {
    "api": 0,
    "settings": 1,
    "derive": 2,
    "gates": 2,
    "history": 2,
    "core": 3,
    "report": 4,
    "exporter": 4,
    "mock": 4,
    "runs": 5,
    "cli": 6,
    "library": 6,
    "launch": 7,
    "__main__": 7,
    "__init__": 7,
}


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        found[".".join(("structocr_cli", *parts)).removesuffix(".__init__")] = path
    return found


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``name`` imports, anywhere in it."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))  # fmt: skip
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in known else base)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return {module for module in found if module in known and module != name}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, set(known)) for name, path in known.items()}


def layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS[parts[1] if len(parts) > 1 else "__init__"]


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """A cycle in ``edges``, as the modules along it, or None."""
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return None
        for imported in sorted(edges.get(module, ())):
            if imported != "structocr_cli" and (cycle := visit(imported, [*path, module])):
                return cycle  # the package itself is imported for __version__ only
        done.add(module)
        return None

    return next((cycle for module in sorted(edges) if (cycle := visit(module, []))), None)


def test_no_import_cycle_anywhere_in_the_package() -> None:
    assert find_cycle(graph()) is None


def test_the_cycle_search_finds_a_planted_cycle() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(edges) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_dependencies_point_one_way() -> None:
    wrong = [
        f"{module} imports {imported}"
        for module, targets in graph().items()
        for imported in targets
        if imported != "structocr_cli" and layer(imported) > layer(module)
    ]
    assert wrong == []


def test_api_imports_nothing_else_of_the_package() -> None:
    for module, targets in graph().items():
        if module.startswith("structocr_cli.api"):
            assert {t for t in targets if not t.startswith("structocr_cli.api")} <= {
                "structocr_cli"
            }, module


def test_an_import_inside_a_function_counts(tmp_path: Path) -> None:
    planted = tmp_path / "resolve.py"
    planted.write_text("def f():\n    from structocr_cli.core import check_balance\n")
    found = imports("structocr_cli.settings.resolve", planted, {"structocr_cli.core"})
    assert found == {"structocr_cli.core"}  # settings importing core: a layer violation
    assert layer("structocr_cli.core") > layer("structocr_cli.settings.resolve")


def test_no_module_over_400_lines() -> None:
    long = {name: n for name, path in modules().items()
            if (n := len(path.read_text().splitlines())) > 400}  # fmt: skip
    assert long == {}


def test_only_the_clock_reads_the_wall_clock() -> None:
    import re

    reads = re.compile(r"datetime\.now\(|datetime\.utcnow\(|time\.time\(\)|gmtime\(|localtime\(|"
                       r"date\.today\(")  # fmt: skip
    found = [name for name, path in modules().items()
             if name != "structocr_cli.api.clock" and reads.search(path.read_text())]  # fmt: skip
    assert found == []
