"""The package's shape: no import cycles (lazy imports inside functions count), no import from a lower layer to a higher
one, the library never imports a command-line module, no two modules share a file name, and each front-end is named in
one place; and tests/ mirrors the package."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "genre_style"
CLI_MODULES = {
    "genre_style.train",
    "genre_style.embed",
    "genre_style.predict",
    "genre_style.report",
    "genre_style.download",
    "genre_style.downstream",
    "genre_style.transfer",
}

# Layers, lowest first: a module imports from its own layer and those below, never from one above. Modules not listed
# (inference, evaluation, tracking, reporting, ...) sit above these; the commands above them (CLI_MODULES).
LAYERS = (
    (
        "genre_style.errors",
        "genre_style.urls",
        "genre_style.console",
        "genre_style.reproducibility",
        "genre_style.numba_cache",
        "genre_style.setting_roles",
        "genre_style.metric_names",
    ),
    ("genre_style.data",),  # audio -> clips -> splits -> batches, and the preprocessing a trained model keeps
    ("genre_style.speedups", "genre_style.models"),
)


def _layer(module: str) -> int:
    return next(
        (i for i, names in enumerate(LAYERS) if any(module == n or module.startswith(n + ".") for n in names)), len(LAYERS)
    )


def _upward(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{m} -> {d}" for m, targets in graph.items() for d in targets if _layer(d) > _layer(m))


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.AST, modules: set[str]) -> set[str]:
    """Every genre_style module a file imports, at the top or inside functions; `if TYPE_CHECKING:` blocks aside."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("genre_style"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("genre_style"))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found & modules


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(files)
    return {name: _imports(ast.parse(path.read_text()), modules) - {name} for name, path in files.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the modules along it, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target not in state and (found := walk(target)):
                return found
        state[node] = 2
        path.pop()
        return None

    for start in sorted(graph):
        if start not in state and (found := walk(start)):
            return found
    return None


def test_the_package_has_no_import_cycle():
    assert _cycle(_graph()) is None, " -> ".join(_cycle(_graph()) or [])


def test_the_detector_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_imports_from_a_higher_layer():
    assert not _upward(_graph()), _upward(_graph())


def test_the_layer_rule_finds_an_upward_import():
    assert _upward({"genre_style.data.datamodule": {"genre_style.inference", "genre_style.errors"}}) == [
        "genre_style.data.datamodule -> genre_style.inference"
    ]


def test_the_library_never_imports_a_command_line_module():
    graph = _graph()
    library = [m for m in graph if m not in CLI_MODULES and m != "genre_style.__main__"]
    offenders = {m: sorted(graph[m] & CLI_MODULES) for m in library if graph[m] & CLI_MODULES}
    assert not offenders, offenders


def _shared_file_names(paths: list[Path]) -> dict[str, list[str]]:
    """File names (other than __init__.py) held by more than one module, with the modules' paths."""
    where: dict[str, list[str]] = defaultdict(list)
    for path in paths:
        if path.name != "__init__.py":
            where[path.name].append(path.relative_to(PACKAGE).as_posix())
    return {name: sorted(found) for name, found in where.items() if len(found) > 1}


def test_no_two_modules_share_a_file_name():
    """Two `store.py` read as one module in tracebacks, searches and talk: library modules are named for what they hold.
    The commands keep `genre_style/<command>.py`, the documented `python -m genre_style.<command>`."""
    shared = _shared_file_names(sorted(PACKAGE.rglob("*.py")))
    assert not shared, f"rename one of each: {shared}"


def test_the_name_rule_finds_a_shared_name():
    paths = [
        PACKAGE / "data" / "store.py",
        PACKAGE / "tracking" / "store.py",
        PACKAGE / "a" / "__init__.py",
        PACKAGE / "__init__.py",
    ]
    assert _shared_file_names(paths) == {"store.py": ["data/store.py", "tracking/store.py"]}


def test_front_ends_are_named_only_in_their_registry():
    """A front-end's name as a string literal anywhere but data/front_ends.py is a second definition of it."""
    from genre_style.data import front_ends

    names = set(front_ends.REGISTRY) - set(front_ends.KINDS)  # "waveform" is also a kind
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "front_ends.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in names:
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.value!r}")
    assert not offenders, offenders


def test_the_tests_mirror_the_package():
    """tests/unit/<sub>/ holds the unit tests of genre_style/<sub>/ (and tests/unit/ those of its top-level modules),
    tests/cli/ the commands as a user types them, tests/system/ the whole stack (servers, DDP, kills): nothing at the
    top of tests/ but shared helpers."""
    tests = Path(__file__).resolve().parents[1]
    assert {p.name for p in tests.iterdir() if p.is_dir() and (p / "__init__.py").exists()} >= {"unit", "cli", "system"}
    assert not list(tests.glob("test_*.py")), "a test file at the top of tests/: move it to unit/, cli/ or system/"
    for folder in (tests / "unit").rglob("*"):
        if folder.is_dir() and folder.name != "__pycache__":
            assert (PACKAGE / folder.relative_to(tests / "unit")).is_dir(), f"tests/unit/{folder.name} mirrors no package"
