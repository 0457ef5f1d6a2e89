"""The package's architecture, read from its imports: layers point down, nothing circles.

    cli | api -> scale -> training | serving -> output | evaluation | export -> explain
        -> models | data -> shapes | io | errors | cpu

covgan/__init__.py re-exports api's verbs on first use (importlib, PEP 562), so importing the
package imports nothing above the bottom layer.

A part is a sub-package or a top-level module of covgan. A part may import parts of lower
layers only (parts of one layer do not import each other), and serving may take only
export.model_config from export: the server must never load Keras model code to read what an
export wrote.
"""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "covgan"
LAYERS = [
    {"__main__"},
    {"cli", "api"},
    {"scale"},
    {"training", "serving"},
    {"output", "evaluation", "export"},
    {"explain"},
    {"models", "data"},
    {"shapes", "io", "errors", "cpu", "__init__"},
]
LAYER_OF = {part: depth for depth, parts in enumerate(LAYERS) for part in parts}


def part_of(module):
    """'covgan.explain.invert' -> 'explain'; 'covgan' (its __init__) -> '__init__'."""
    names = module.split(".")
    return names[1] if len(names) > 1 else "__init__"


def is_submodule(name):
    return (PACKAGE / f"{name}.py").is_file() or (PACKAGE / name).is_dir()


def imports():
    """(importing part, imported module, file) for every covgan import in the package."""
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        module = ".".join(relative.parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] if node.module != "covgan" else [
                    f"covgan.{alias.name}" if is_submodule(alias.name) else "covgan"
                    for alias in node.names]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            for target in targets:
                if target == "covgan" or target.startswith("covgan."):
                    yield part_of(module), target, path


def dependencies():
    return {(source, part_of(target)) for source, target, _ in imports()
            if part_of(target) != source}


def test_every_part_has_a_layer():
    parts = {part_of(".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts))
             for p in PACKAGE.rglob("*.py")}
    assert parts <= set(LAYER_OF), sorted(parts - set(LAYER_OF))


def test_imports_only_point_down():
    upward = sorted((a, b) for a, b in dependencies() if LAYER_OF[a] >= LAYER_OF[b])
    assert not upward, f"imports that point up or sideways: {upward}"


def test_no_import_circle():
    graph = {}
    for a, b in dependencies():
        graph.setdefault(a, set()).add(b)

    def reaches(start, goal, seen=()):
        return any(n == goal or (n not in seen and reaches(n, goal, (*seen, n)))
                   for n in graph.get(start, ()))

    assert not [part for part in graph if reaches(part, part)]


def test_serving_reads_exports_through_model_config_only():
    taken = {target for source, target, _ in imports()
             if source == "serving" and part_of(target) == "export"}
    assert taken <= {"covgan.export.model_config"}, taken


# model_config: the server reads exports without Keras model code. cli: `covgan --help` answers at
# once, so the command line takes its defaults from the TensorFlow-free settings modules.
@pytest.mark.parametrize("module", ["covgan.export.model_config", "covgan.cli"])
def test_light_modules_load_no_keras(module):
    import subprocess
    import sys

    code = f"import sys, {module}; print('keras' in sys.modules, 'tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "False", result.stdout
