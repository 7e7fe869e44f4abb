"""Nothing from a params file, a dataset or a checkpoint is ever run as code.

A static check over the code base (advinterp/, stages/, flows/, bench/, scripts/): every
call is resolved through the module's imports to its full name, and these are refused:

* ``torch.load`` without ``weights_only=True`` (a checkpoint could carry a pickled payload);
* pickle-based loaders: ``pickle``/``dill``/``cloudpickle``/``joblib``/``marshal``/``shelve``,
  ``pandas.read_pickle``, and any call with ``allow_pickle=True`` (``numpy.load``);
* ``yaml.load`` without a ``SafeLoader``, ``yaml.unsafe_load``, ``yaml.full_load``;
* the builtins ``eval``, ``exec``, ``compile``; ``os.system``/``os.popen`` and any call
  with ``shell=True``.

``test_checker_finds_each_pattern`` shows the checker itself catches every one of them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECKED = ("advinterp", "stages", "flows", "bench", "scripts")

FORBIDDEN = {
    "pickle.load",
    "pickle.loads",
    "pickle.Unpickler",
    "_pickle.load",
    "_pickle.loads",
    "cPickle.load",
    "cPickle.loads",
    "dill.load",
    "dill.loads",
    "cloudpickle.load",
    "cloudpickle.loads",
    "joblib.load",
    "marshal.load",
    "marshal.loads",
    "shelve.open",
    "pandas.read_pickle",
    "yaml.unsafe_load",
    "yaml.unsafe_load_all",
    "yaml.full_load",
    "yaml.full_load_all",
    "os.system",
    "os.popen",
    "eval",
    "exec",
    "compile",
    "builtins.eval",
    "builtins.exec",
}


def _aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> full dotted name, from the module's import statements."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                names[a.asname or a.name.split(".")[0]] = (
                    a.name if a.asname else a.name.split(".")[0]
                )
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                names[a.asname or a.name] = f"{node.module}.{a.name}"
    return names


def _dotted(func: ast.expr, aliases: dict[str, str]) -> str | None:
    parts: list[str] = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if not isinstance(func, ast.Name):
        return None
    head = aliases.get(func.id, func.id)
    return ".".join([head, *reversed(parts)])


def _is_true(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def unsafe_calls(source: str, filename: str = "<string>") -> list[str]:
    """Every unsafe call in ``source``, as ``file:line: what``."""
    tree = ast.parse(source, filename)
    aliases = _aliases(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func, aliases)
        kw = {k.arg: k.value for k in node.keywords if k.arg}
        problem = None
        if name in FORBIDDEN:
            problem = f"{name}() can run code from its input"
        elif name == "torch.load" and not _is_true(kw.get("weights_only")):
            problem = "torch.load() without weights_only=True"
        elif name in ("yaml.load", "yaml.load_all"):
            loader = kw.get("Loader") or (node.args[1] if len(node.args) > 1 else None)
            loader_name = _dotted(loader, aliases) if loader is not None else None
            if not (loader_name and loader_name.endswith("SafeLoader")):
                problem = f"{name}() without a SafeLoader"
        elif _is_true(kw.get("allow_pickle")):
            problem = f"{name}(allow_pickle=True)"
        elif _is_true(kw.get("shell")):
            problem = f"{name}(shell=True)"
        if problem:
            found.append(f"{filename}:{node.lineno}: {problem}")
    return found


def _sources() -> list[Path]:
    return sorted(p for d in CHECKED if (ROOT / d).is_dir() for p in (ROOT / d).rglob("*.py"))


def test_the_code_base_loads_nothing_unsafely():
    files = _sources()
    assert any(f.parts[-2] == "models" and f.name == "checkpoint.py" for f in files)
    found = [hit for f in files for hit in unsafe_calls(f.read_text(), str(f.relative_to(ROOT)))]
    assert found == [], "\n".join(found)


@pytest.mark.parametrize(
    "snippet",
    [
        "import torch\ntorch.load('m.pt')",
        "import torch\ntorch.load('m.pt', weights_only=False)",
        "from torch import load\nload('m.pt', map_location='cpu')",
        "import pickle\npickle.load(open('x', 'rb'))",
        "from pickle import loads as l\nl(b'')",
        "import joblib\njoblib.load('x')",
        "import pandas as pd\npd.read_pickle('x')",
        "import numpy as np\nnp.load('x.npy', allow_pickle=True)",
        "import yaml\nyaml.load(open('p.yaml'))",
        "import yaml\nyaml.load(open('p.yaml'), Loader=yaml.Loader)",
        "import yaml\nyaml.unsafe_load('a: 1')",
        "eval('1 + 1')",
        "exec('x = 1')",
        "import subprocess\nsubprocess.run('ls', shell=True)",
        "import os\nos.system('ls')",
    ],
)
def test_checker_finds_each_pattern(snippet):
    assert len(unsafe_calls(snippet)) == 1, snippet


@pytest.mark.parametrize(
    "snippet",
    [
        "import torch\ntorch.load('m.pt', map_location='cpu', weights_only=True)",
        "import yaml\nyaml.safe_load('a: 1')",
        "import yaml\nyaml.load('a: 1', Loader=yaml.SafeLoader)",
        "import yaml\nyaml.load('a: 1', Loader=yaml.CSafeLoader)",
        "import numpy as np\nnp.load('x.npy')",
        "model.eval()",
        "import subprocess\nsubprocess.run(['dvc', 'repro'])",
    ],
)
def test_checker_accepts_the_safe_forms(snippet):
    assert unsafe_calls(snippet) == []
