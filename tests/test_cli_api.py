"""The CLI and the Python API end to end, with the real offline weights on tiny images."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import pytest
import torch
from PIL import Image

from portrait_stylize import stylize
from portrait_stylize.callbacks import Recorder
from portrait_stylize.cli import build_parser, main
from portrait_stylize.methods import METHODS, SPECS, Settings, resolve_settings


def test_help_lists_every_option_with_its_default(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag in ("--size", "--iterations", "--seed", "--device", "--method", "--style-weight"):
        assert flag in text
    assert "(default: 1000; crowson: 500" in text
    assert "default: 200.0; gatys-plus: 4000.0; crowson: 1.0" in text
    options = [a for a in build_parser()._actions if a.option_strings and a.dest != "help"]
    documented = [a for a in options if a.help and "default" in a.help]
    assert {a.dest for a in options} - {a.dest for a in documented} <= {
        "output",
        "version",
        "quiet",
        "keep_alpha",
    }


@pytest.mark.parametrize("name", list(METHODS))
def test_methods_lists_options_that_rebuild_each_preset(name, capsys) -> None:
    assert main(["methods", name]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{name}: {METHODS[name].description}")
    assert all(f"  - {note}" in lines for note in METHODS[name].notes)
    options = next((x.split(": ", 1)[1].split() for x in lines if x.startswith("  settings:")), [])
    args = build_parser().parse_args(["c.jpg", "s.jpg", "-o", "o.png", *options])
    rebuilt = resolve_settings("gatys", {n: getattr(args, n) for n in SPECS if n != "method"})
    assert replace(rebuilt, method=name) == resolve_settings(name)


def test_methods_json_and_unknown_name(capsys) -> None:
    assert main(["methods", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["name"] for row in rows] == list(METHODS)
    painting = rows[list(METHODS).index("portrait-painting")]
    assert painting["settings"]["mesh_weight"] == 1e-3
    assert painting["paper_exact"]["face_loss"] == "activations"
    assert main(["methods", "nope"]) == 2
    assert "unknown method 'nope'; choose from gatys" in capsys.readouterr().err


def test_cli_run_writes_image_and_record(pair, tmp_path, capsys) -> None:
    content, style = pair
    out = tmp_path / "result.png"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        args = ["-o", str(out), "--method", "gatys", "--size", "32", "--iterations", "3", "-q"]
        code = main([str(content), str(style), *args])
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    assert Image.open(out).size == (32, 27)
    record = json.loads((tmp_path / "result.png.json").read_text())
    assert record["method"] == "gatys" and record["settings"]["iterations"] == 3
    assert record["settings"]["seed"] == 0 and record["backbone"] == "vgg19-caffe"
    assert (
        record["weights"][0]["name"] == "vgg19-caffe" and len(record["weights"][0]["sha256"]) == 64
    )
    assert set(record["stages"][0]["final_terms"]) == {"content", "style", "tv"}
    assert record["inputs"]["content"]["sha256"] and record["versions"]["torch"]
    assert record["stopped"] is None and record["device"] == "cpu" and record["threads"] == 1


def test_bad_input_is_one_line_exit_2_and_writes_nothing(pair, tmp_path, capsys) -> None:
    content, _ = pair
    broken = tmp_path / "broken.png"
    broken.write_text("not an image")
    out = tmp_path / "out.png"
    assert main([str(content), str(broken), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        len(err) == 1 and "broken.png" in err[0] and err[0].startswith("portrait-stylize: error:")
    )
    assert not out.exists() and not (tmp_path / "out.png.json").exists()
    assert main([str(content), str(content), "-o", str(tmp_path / "out.gif")]) == 2
    assert main([str(content), str(content), "-o", str(out), "--init", "zeros"]) == 2
    assert main([str(content), str(content), "-o", str(out), "--device", "tpu"]) == 2


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_cuda_without_gpu_is_a_clear_error(pair, tmp_path, capsys) -> None:
    content, style = pair
    assert main([str(content), str(style), "-o", str(tmp_path / "o.png"), "--device", "cuda"]) == 2
    assert "no CUDA GPU is available" in capsys.readouterr().err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_run(pair) -> None:
    result = stylize(*pair, size=32, iterations=3, device="cuda")
    assert result.record["device"].startswith("cuda") and torch.isfinite(result.image).all()


def test_api_is_repeatable_with_a_seed_and_reports_steps(pair) -> None:
    content, style = pair
    recorder = Recorder()
    first = stylize(
        content, style, "gatys", size=32, iterations=4, seed=7, init="noise", callbacks=[recorder]
    )
    second = stylize(content, [style], "gatys", size=32, iterations=4, seed=7, init="noise")
    other = stylize(content, style, "gatys", size=32, iterations=4, seed=8, init="noise")
    assert torch.equal(first.image, second.image)
    assert not torch.equal(first.image, other.image)
    assert [s[1] for s in recorder.steps] == [1, 2, 3, 4]
    assert first.image.shape == (3, 27, 32)


def test_settings_overrides_and_presets() -> None:
    plus = resolve_settings("gatys-plus")
    assert plus.style_weight == 20 * Settings().style_weight
    assert resolve_settings("gatys", {"style_layers": ["relu1_1"]}).style_layers == ("relu1_1",)
    with pytest.raises(ValueError, match="unknown setting"):
        resolve_settings("gatys", {"styel_weight": 1.0})
    with pytest.raises(ValueError, match="unknown method"):
        resolve_settings("picasso")
    with pytest.raises(ValueError, match="one weight per style layer"):
        resolve_settings("gatys", {"style_layer_weights": [1.0]})
    assert {"gatys", "gatys-plus"} <= set(METHODS)


def test_several_styles_blend(pair, tmp_path) -> None:
    content, style = pair
    flat = tmp_path / "flat.png"
    Image.new("RGB", (32, 32), (200, 30, 30)).save(flat)
    result = stylize(content, [style, flat], size=32, iterations=2, style_blend_weights=[3, 1])
    assert list(result.record["settings"]["style_blend_weights"]) == [3, 1]
    with pytest.raises(ValueError, match="do not fit"):
        stylize(content, [style, flat], size=32, iterations=1, style_blend_weights=[1])


def test_sigint_saves_the_last_good_image(pair, tmp_path) -> None:
    """Ctrl-C during a run: the image so far and its record are saved, exit code 130."""
    content, style = pair
    out = tmp_path / "interrupted.png"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "portrait_stylize.cli", str(content), str(style)]
    command += ["-o", str(out), "--size", "48", "--iterations", "100000"]
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stderr is not None
    seen = ""
    deadline = time.monotonic() + 120
    while "loss=" not in seen and time.monotonic() < deadline:
        seen += proc.stderr.read(1)  # the progress bar shows loss terms once steps run
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=60)
    assert proc.returncode == 130, seen + rest
    record = json.loads((tmp_path / "interrupted.png.json").read_text())
    assert record["stopped"] == "cancelled" and record["signal"] == int(signal.SIGINT)
    assert Image.open(out).size == (48, 40)
