"""Pretrained weights: the registry and the catalogue of networks."""

from . import catalog as _catalog  # noqa: F401 - registers the declarations
from .registry import (
    REGISTRY,
    NpmSource,
    PackageSource,
    UrlSource,
    WeightsError,
    WeightSpec,
    cache_root,
    file_digest,
    get_spec,
    load_state_dict,
    register,
    weight_path,
)

__all__ = [
    "REGISTRY",
    "NpmSource",
    "PackageSource",
    "UrlSource",
    "WeightSpec",
    "WeightsError",
    "cache_root",
    "file_digest",
    "get_spec",
    "load_state_dict",
    "register",
    "weight_path",
]
