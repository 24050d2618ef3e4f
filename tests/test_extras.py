"""A command whose optional extra is not installed says which one to install: one line,
exit 2, before any work (the extra's modules hidden by setting them to None in
``sys.modules``, which makes importing them fail as if they were not installed)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from portrait_stylize.cli import main
from portrait_stylize.errors import ExtraMissing, outcome
from portrait_stylize.extras import EXTRAS, require_extra

WEB = "portrait-stylize serve needs the web extra ({} is not installed): "
WEB += "pip install 'portrait-stylize[web]'"
RAY = "portrait-stylize batch --executor ray needs the ray extra (ray is not installed): "
RAY += "pip install 'portrait-stylize[ray]'"


@pytest.mark.parametrize("module", ["fastapi", "uvicorn", "python_multipart"])
def test_serve_without_the_web_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path: Path, module: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    # should the check regress, fail at once rather than start a server
    monkeypatch.setitem(sys.modules, "portrait_stylize.web.server", None)
    if module == "python_multipart":
        monkeypatch.setitem(sys.modules, "multipart", None)  # its old name, also gone
    assert main(["serve", "--data", str(tmp_path / "data"), "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert err == f"portrait-stylize: error: {WEB.format(module)}\n"
    assert not (tmp_path / "data").exists()


def test_batch_on_ray_without_the_ray_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    outdir = tmp_path / "out"
    args = ["batch", str(tmp_path / "photos"), str(tmp_path / "styles"), "-o", str(outdir)]
    assert main([*args, "--executor", "ray", "-q"]) == 2
    assert capsys.readouterr().err == f"portrait-stylize: error: {RAY}\n"
    assert not outdir.exists()  # refused before the inputs are looked at


def test_the_old_multipart_name_is_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    """python-multipart before 0.0.13 has no python_multipart module."""
    monkeypatch.setitem(sys.modules, "python_multipart", None)
    monkeypatch.setitem(sys.modules, "multipart", sys.modules.get("multipart") or object())
    require_extra("web", "portrait-stylize serve")


def test_every_extra_of_pyproject_is_checked() -> None:
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    extras = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]
    assert set(EXTRAS) == set(extras) - {"dev"}
    assert outcome(ExtraMissing("x")).exit_code == 2


def test_serve_without_uvicorn_in_a_real_process(tmp_path: Path) -> None:
    """What a user sees: one line on standard error, no traceback, exit 2."""
    script = (
        "import sys; sys.modules['uvicorn'] = None; "
        "from portrait_stylize.cli import main; "
        f"sys.exit(main(['serve', '--data', {str(tmp_path / 'data')!r}]))"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 2, run.stderr
    assert run.stderr == f"portrait-stylize: error: {WEB.format('uvicorn')}\n"
    assert run.stdout == ""
