"""The shape of the code, checked from its import graph (read with `ast`, lazy imports inside
functions included): no import circles, backends as leaves, the query side free of the build,
and no module growing past what one reading holds."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "rag"
MAX_LINES = 450  # a guard against growth (issue 33: no module over 450 lines)


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path], top_level_only: bool = False) -> dict[str, int]:
    """rag modules `name` imports -> the line of the first such import."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = [n for n in tree.body if not _type_checking(n)] if top_level_only else _walk(tree)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: dict[str, int] = {}
    for node in nodes:
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package[: len(package) - (node.level - 1)]
                base = ".".join(parent + ([base] if base else []))
            # `from pkg import module` depends on the module; `from module import name` on the module
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for target in targets:
            if target in known and target != name:
                found.setdefault(target, node.lineno)
    return found


def _type_checking(node: ast.AST) -> bool:
    """An `if TYPE_CHECKING:` block: its imports never run."""
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _walk(node: ast.AST):
    """Every node, lazy imports inside functions included, `if TYPE_CHECKING:` blocks excluded."""
    for child in ast.iter_child_nodes(node):
        if not _type_checking(child):
            yield child
            yield from _walk(child)


def graph(top_level_only: bool = False) -> dict[str, dict[str, int]]:
    known = modules()
    return {name: imports(name, path, known, top_level_only) for name, path in known.items()}


def cycles(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], 0
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_graph_finds_a_circle_when_there_is_one():
    assert cycles({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b": 1}, "b": {}}) == []


def test_no_import_circles():
    assert cycles(graph()) == []


def test_backends_are_leaves():
    edges = graph()
    assert "rag.embedders.onnx" not in edges["rag.embedders.st"]
    assert "rag.embedders.st" not in edges["rag.embedders.onnx"]
    for backend in ("rag.embedders.st", "rag.embedders.onnx"):
        assert "rag.embedders" not in edges[backend], backend  # the registry picks backends, not the reverse
    for role in ("readers", "rerankers"):  # below the model code: they import nothing of their role
        assert not any(t.startswith(f"rag.{role}") for t in edges[f"rag.{role}.backends"]), role


def test_the_query_side_never_imports_the_build():
    """Searching loads no writer code: only `Index.build`/`build_from_documents`, the
    convenience entry points for writing, import `rag.build`, and only when called."""
    edges = graph()
    query_side = [
        "rag.index",
        "rag.segments",
        "rag.retrieve",
        "rag.lexical",
        "rag.faiss_index",
        "rag.stored",
        "rag.readers",
        "rag.readers.reader",
        "rag.readers.spans",
        "rag.readers.features",
        "rag.rerankers",
        "rag.rerankers.apply",
        "rag.rerankers.cross_encoder",
        "rag.rerankers.fusion",
        "rag.rerankers.loading",
    ]
    top = graph(top_level_only=True)
    for name in query_side:
        assert not any(t == "rag.build" or t.startswith("rag.build.") for t in top[name]), name
    lazy = {t: line for t, line in edges["rag.index"].items() if t.startswith("rag.build")}
    source = (PACKAGE / "index.py").read_text(encoding="utf-8").splitlines()
    for line in lazy.values():
        enclosing = next(text for text in reversed(source[:line]) if text.lstrip().startswith("def "))
        assert enclosing.strip().startswith(("def build(", "def build_from_documents(")), enclosing


def test_no_module_grows_past_what_one_reading_holds():
    sizes = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in modules().items()}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def test_the_answerer_roles_never_import_each_other_and_evaluate_below_the_bench():
    """Readers and generators share only what lives below both (`rag.answers`); resolving a name to
    either is `rag.answerers`, above both. Readers and rerankers score with `rag.metrics`, never by
    importing the bench above them."""
    edges = graph()
    for name, targets in edges.items():
        for role, other in (("rag.generators", "rag.readers"), ("rag.readers", "rag.generators")):
            if name == role or name.startswith(role + "."):
                assert not [t for t in targets if t == other or t.startswith(other + ".")], (name, targets)
        if name.startswith(("rag.readers", "rag.rerankers")):
            assert not [t for t in targets if t == "rag.bench" or t.startswith("rag.bench.")], name
    for low in ("rag.answers", "rag.metrics"):
        assert not [t for t in edges[low] if t.startswith(("rag.readers", "rag.generators", "rag.bench"))], low
