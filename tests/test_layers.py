"""The dependency rule between layers, checked on the source's import statements."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "sidekiq_supervisor"

# layer -> project packages it may import (besides itself)
ALLOWED = {
    "domain": set(),
    "store": {"domain"},
    "sidekiq_redis": {"domain"},
    "services": {"domain", "store", "sidekiq_redis", "settings", "apps", "clock", "render"},
    "web": {"services", "domain", "settings", "apps", "clock"},
    "cli": {"services", "domain", "settings", "apps", "render"},
}
# What any layer may import from the package itself.
EVERYWHERE = {"__version__"}
# Modules that wire the layers together at start-up, and the read-model records.
EXCEPTIONS = {
    "web/app.py": {"store", "sidekiq_redis"},
    "web/api/presenters.py": {"store"},
    "cli/database.py": {"store"},
    "cli/main.py": {"store"},
}


def project_imports(path: Path) -> set[str]:
    """The first component under sidekiq_supervisor of every project import in ``path``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module == "sidekiq_supervisor":
            names = [f"sidekiq_supervisor.{alias.name}" for alias in node.names]  # from the package
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "sidekiq_supervisor" and len(parts) > 1:
                found.add(parts[1])
    return found


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_each_layer_imports_only_what_the_dependency_rule_allows(layer):
    offences = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        allowed = ALLOWED[layer] | {layer} | EVERYWHERE | EXCEPTIONS.get(relative, set())
        offences += [f"{relative} imports {name}" for name in project_imports(path) - allowed]
    assert offences == []


def test_an_import_from_the_package_itself_is_checked_too(tmp_path):
    module = tmp_path / "module.py"
    module.write_text(
        "from sidekiq_supervisor import render, settings\nimport sidekiq_supervisor.store.queries\n"
    )
    assert project_imports(module) == {"render", "settings", "store"}
