"""The package tree is the flow (docs/architecture.md): every module imports on its own, and the
arrows between packages point one way.

An import circle can hide behind an import order: ``a`` imports ``b`` imports ``a`` works when
``b`` happens to be loaded first. So each module is imported with none of the project's modules
loaded before it. Third-party packages (torch, Ray, MLflow) stay loaded between modules: they
take seconds to import and cannot take part in a circle of ours.
"""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("orchestrator", "trainers")


def modules() -> list[str]:
    return sorted(".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
                  for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def imports_of(path: Path) -> set[str]:
    """Every project module a file names in an import statement, at any depth."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.split(".")[0] in PACKAGES}


def test_every_module_imports_with_no_other_project_module_loaded():
    probe = """
import importlib, sys, traceback
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m.split('.')[0] in ('orchestrator', 'trainers')]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failed.append(name + ': ' + traceback.format_exc().splitlines()[-1])
print('\\n'.join(failed))
"""
    done = subprocess.run([sys.executable, "-c", probe, *modules()], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "", done.stdout


def test_trainers_never_import_the_orchestrator():
    offenders = {str(p.relative_to(ROOT)): sorted(n for n in imports_of(p) if n.startswith("orchestrator"))
                 for p in (ROOT / "trainers").rglob("*.py")}
    assert {f: names for f, names in offenders.items() if names} == {}


def test_only_the_sweep_and_the_serving_code_reach_serve():
    """``serve`` is the last step: the report and the tracking code never load the serving code (the
    registry once imported ``best_runs`` from predict, and so loaded ``mlflow.transformers``)."""
    readers = {str(p.relative_to(ROOT)) for p in (ROOT / "orchestrator").rglob("*.py")
               if any(n.startswith("orchestrator.serve") for n in imports_of(p))
               and p.parent != ROOT / "orchestrator" / "serve"}
    assert readers == {"orchestrator/sweep.py"}


def test_every_package_module_is_named_in_its_package_map():
    """The map in each package's docstring lists every module of the tree (so it cannot drift)."""
    for pkg in PACKAGES:
        doc = ast.get_docstring(ast.parse((ROOT / pkg / "__init__.py").read_text()))
        for path in (ROOT / pkg).rglob("*.py"):
            if path.name == "__init__.py" or path.parent.name == "report":
                continue
            assert path.name in doc, f"{path.relative_to(ROOT)} is missing from {pkg}/__init__.py's map"
