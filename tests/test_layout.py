"""The code's shape: no import cycles between the project's modules, modules
small enough to read (300 lines), and no text that points at a path which is gone."""

from __future__ import annotations

import ast
import re
import subprocess

from tests.conftest import ROOT

PACKAGES = ("stacks", "delivery", "tools", "fixtures", "rehearsal", "account_setup", "packaging_job")
MAX_LINES = 300


def modules() -> dict[str, ast.Module]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            found[name] = ast.parse(path.read_text())
    return found


def imports(tree: ast.Module, known: set[str]) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
    return names & known


def test_no_module_imports_itself_back():
    trees = modules()
    graph = {name: imports(tree, set(trees)) - {name} for name, tree in trees.items()}
    seen: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        seen[name] = 1
        for target in sorted(graph[name]):
            assert seen.get(target) != 1, f"import cycle: {' -> '.join(path + [name, target])}"
            if target not in seen:
                visit(target, path + [name])
        seen[name] = 2

    for name in sorted(graph):
        if name not in seen:
            visit(name, [])


def test_modules_stay_under_300_lines():
    files = [p for package in PACKAGES + ("tests",) for p in (ROOT / package).rglob("*.py")] + [ROOT / "app.py"]
    over = sorted(p.relative_to(ROOT).as_posix() for p in files if len(p.read_text().splitlines()) > MAX_LINES)
    assert over == [], f"over {MAX_LINES} lines: {over}"


def test_every_project_path_a_text_names_exists():
    """The README's test map, the rehearsal's list of where each command runs,
    docstrings: a move or a rename must take them along."""
    tops = "|".join((*PACKAGES, "tests", "benchmarks"))
    cited = re.compile(rf"(?<![\w./-])(?:{tops})/[\w./-]*[\w/]")
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    texts = [name for name in tracked if name.endswith((".py", ".md", ".yml", ".toml", ".txt", ".json", "Makefile"))]
    assert "README.md" in texts
    missing = {
        f"{name}: {path}"
        for name in texts
        for path in cited.findall((ROOT / name).read_text())
        if not (ROOT / path).exists()
    }
    assert not missing, sorted(missing)
