"""Start-up: the CLI's help, its argument checks and the settings schema import no
PyTorch, and the instant method's path no torchvision (each checked in a fresh process,
by what it imported, not by the clock)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from portrait_stylize import losses
from portrait_stylize.methods import METHODS
from portrait_stylize.methods.settings import FLOAT32_MAX
from portrait_stylize.vocabulary import CONVENTION_NAMES

HEAVY = ("torch", "torchvision", "onnx")
CLI = """
import sys
from portrait_stylize.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as stop:
    code = stop.code
print("imported:", *sorted(m for m in {heavy} if m in sys.modules), file=sys.stderr)
sys.exit(code)
"""


def run_cli(*argv: str, cwd: Path | None = None) -> tuple[int, str, list[str]]:
    """The CLI run on ``argv`` in a fresh interpreter: exit code, standard error and
    which of :data:`HEAVY` it imported."""
    script = CLI.format(heavy=HEAVY)
    done = subprocess.run(
        [sys.executable, "-c", script, *argv], capture_output=True, text=True, cwd=cwd
    )
    *err, imported = done.stderr.strip().splitlines()
    assert imported.startswith("imported:"), done.stderr
    return done.returncode, "\n".join(err), imported.split()[1:]


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["--version"],
        *([name, "--help"] for name in ("methods", "weights", "inspect", "evaluate", "serve")),
        ["batch", "--help"],
        ["methods", "portrait-painting"],
    ],
)
def test_help_version_and_methods_import_no_torch(argv) -> None:
    code, err, imported = run_cli(*argv)
    assert (code, imported) == (0, []), err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["c.jpg", "s.jpg", "-o", "o.png", "--colour", "red"], "unrecognized arguments"),
        (["c.jpg", "s.jpg"], "required: -o/--output"),
        (["c.jpg", "s.jpg", "-o", "o.png", "--size", "abc"], "invalid int value"),
        (["c.jpg", "s.jpg", "-o", "o.png", "--method", "picasso"], "invalid choice"),
        (["c.jpg", "s.jpg", "-o", "o.png", "--size", "8"], "size must be in [16, 16384]"),
        (["c.jpg", "s.jpg", "-o", "o.gif"], "o.gif: output must end in one of"),
        (["missing.jpg", "s.jpg", "-o", "o.png"], "missing.jpg: no such file"),
        (["c.jpg", "s.jpg", "-o", "o.png", "--device", "tpu"], "device must be"),
    ],
)
def test_argument_errors_are_answered_before_torch(argv, message, tmp_path) -> None:
    (tmp_path / "c.jpg").write_bytes(b"\xff\xd8\xff not read")
    (tmp_path / "s.jpg").write_bytes(b"\xff\xd8\xff not read")
    code, err, imported = run_cli(*argv, cwd=tmp_path)
    assert code == 2 and message in err and err.startswith("portrait-stylize: error:"), err
    assert imported == []


def test_the_settings_and_the_registry_import_no_torch_until_the_code_is_used() -> None:
    script = (
        "import sys\n"
        "from portrait_stylize.methods import METHODS, resolve_settings, settings_schema\n"
        "settings_schema(); [resolve_settings(name) for name in METHODS]\n"
        "assert 'torch' not in sys.modules\n"
        "METHODS['gatys'].build\n"
        "assert 'torch' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)


def test_the_instant_path_imports_no_torchvision(pair, tmp_path) -> None:
    """The API, and an instant run end to end, do without torchvision (a second of import)."""
    content, style = pair
    code, err, imported = run_cli(
        str(content), str(style), "-o", str(tmp_path / "out.png"), "--method", "instant", "-q"
    )
    assert code == 0 and (tmp_path / "out.png").exists(), err
    assert "torch" in imported and "torchvision" not in imported


def test_every_method_names_code_that_exists() -> None:
    for method in METHODS.values():
        for name, code in [
            (method.builder, method.build),
            (method.preparer, method.prepare),
            (method.renderer, method.render),
        ]:
            assert (name is None and code is None) or (callable(code) and code.__name__ in name)


def test_the_torch_free_constants_match_torch() -> None:
    assert torch.finfo(torch.float32).max == FLOAT32_MAX
    assert tuple(losses.CONVENTIONS) == CONVENTION_NAMES
