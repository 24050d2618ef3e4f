"""Every setting of a run, described once.

Each field of :class:`Settings` carries a :class:`Spec`: its help, group, choices, bounds,
and whether it names a file on the machine that runs or is the worker's concern. From
it come the CLI's options grouped by concern (``cli.py``), the generic checks of
:meth:`Settings.validate`, the schema of a web form (:func:`settings_schema`), the
checking of a job's untrusted JSON (:func:`parse_settings`) and the settings that make
a job's identity (:func:`job_settings`). Cross-field rules are code in ``validate``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import re
import types
import typing
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..errors import SettingsError, printable
from ..vocabulary import (
    BACKBONES,
    CALIBRATIONS,
    CONVENTION_NAMES,
    DEFAULT_BACKBONE,
    DETECTORS,
    FACE_LOSSES,
    FACE_MODELS,
    FACENET_MODELS,
    MASKED_GRAM_NORMS,
    MIN_SIDE,
    OPTIMIZERS,
    PERSON_MODELS,
    STYLE_LAYERS,
    layer_names,
    parse_background,
)
from .registry import DEFAULT_METHOD, METHODS

GROUPS: dict[str, str] = {
    "method": "the method, the result's size, the seed and the style blend",
    "schedule": "optimisation: scales, steps, optimiser, start image, early end",
    "losses": "loss terms: layers, weights and their normalisation",
    "portrait-aware": "portrait-aware (Xing et al. 2018): person mask and background style",
    "faces": "portrait-stylization: the faces found and how much of each is kept",
    "output": "the content's background before, its colours after",
    "advanced": "feature network, precision and device",
}
"""The concerns settings are grouped by, in the order of ``--help`` and the web form."""
BACKGROUND_LAYERS = ("relu1_1", "relu2_1", "relu3_1")
INITS = ("mean", "noise", "content", "gray", "uniform", "style-mean", "instant")
PRECISIONS = ("auto", "fp32", "bf16")
LAYOUTS = ("auto", "nchw", "channels-last")
PAPER_EXACT: dict[str, Any] = {"precision": "fp32", "converge_tol": 0.0}
"""What ``paper_exact`` sets over every method's speed defaults (the papers' iteration
counts are the defaults already)."""
MAX_SIZE = 16384
"""The longest side a result or a style image may have: at 16384 px VGG-19's first layer
alone holds 64 x 16384² floats (69 GB)."""
FLOAT32_MAX = 3.4028234663852886e38
"""``torch.finfo(torch.float32).max``: the largest number the engine computes with; a
setting beyond it is infinite there."""
DEVICE = re.compile(r"cpu|cuda(:[0-9]+)?")
"""The devices a run may name; PyTorch must also read the name back unchanged (it wraps
cuda:128 round to cuda:-128)."""


@dataclass(frozen=True)
class Spec:
    """What a setting means and accepts, beside its type and default.

    ``choices``: the allowed values (empty: any); ``low``/``high``: bounds of a number
    (of each number of a list), inclusive unless ``open_low``/``open_high``.
    ``file_prefix``: values starting with it name a file on the machine that runs ("": any
    value); a CLI option, refused in a job's JSON (a job sends its files as uploads).
    ``worker``: where a job runs, not what it computes; not part of its identity.
    """

    help: str
    group: str
    choices: Collection[str] = ()
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    file_prefix: str | None = None
    worker: bool = False

    def range_text(self) -> str:
        """The bounds in words: "at least 0", "in [0, 1)", ... ("" when unbounded)."""
        if self.low is not None and self.high is not None:
            left, right = "(" if self.open_low else "[", ")" if self.open_high else "]"
            return f"in {left}{self.low}, {self.high}{right}"
        if self.low is not None:
            return f"{'greater than' if self.open_low else 'at least'} {self.low}"
        if self.high is not None:
            return f"{'less than' if self.open_high else 'at most'} {self.high}"
        return ""

    def within(self, value: float) -> bool:
        """Whether number ``value`` lies within the bounds."""
        above = self.low is None or (value > self.low if self.open_low else value >= self.low)
        below = self.high is None or (value < self.high if self.open_high else value <= self.high)
        return above and below

    def check(self, name: str, value: Any) -> None:
        """Raise SettingsError naming ``name`` when ``value`` (or an item of a tuple) is not
        a choice, not finite (in float32), or out of bounds."""
        for item in value if isinstance(value, tuple) else (value,):
            if item is None or isinstance(item, bool):
                continue
            if self.choices and item not in self.choices:
                raise SettingsError(f"{name} must be one of {', '.join(self.choices)}", name)
            if isinstance(item, float) and not abs(item) <= FLOAT32_MAX:
                limit = f" within float32's ±{FLOAT32_MAX:.2g}" if math.isfinite(item) else ""
                raise SettingsError(f"{name} must be a finite number{limit}, not {item}", name)
            if isinstance(item, int | float) and not self.within(item):
                raise SettingsError(f"{name} must be {self.range_text()}, not {item}", name)

    def names_file(self, value: Any) -> bool:
        """Whether ``value`` names a file on the machine that runs."""
        prefix = self.file_prefix
        return prefix is not None and isinstance(value, str) and value.startswith(prefix)


T = TypeVar("T")


def setting(default: T, help: str, group: str, **spec: Any) -> T:
    """A field of :class:`Settings` with its :class:`Spec`."""
    return field(default=default, metadata={"spec": Spec(help, group, **spec)})


@dataclass
class Settings:
    """Every setting of a run; saved in the run record so the run can be repeated."""

    method: str = setting(DEFAULT_METHOD, "method preset", "method", choices=METHODS)
    size: int = setting(
        512,
        "long side of the result in pixels (the last scale's)",
        "method",
        low=MIN_SIDE,
        high=MAX_SIZE,
    )
    min_size: int | None = setting(
        None,
        "multi-scale: long side of the first scale, scales growing by √2 up to size "
        "(unset: one scale)",
        "schedule",
        low=MIN_SIDE,
        high=MAX_SIZE,
    )
    initial_iterations: int | None = setting(
        None, "multi-scale: steps at the first scale (unset: iterations)", "schedule", low=0
    )
    iterations: int = setting(
        1000,
        "optimisation steps (multi-scale: at each scale after the first, or with "
        "step_exponent at the first and fewer at each finer one)",
        "schedule",
        low=0,
    )
    step_exponent: float = setting(
        0.0,
        "multi-scale: a scale of long side s takes iterations x (first side / s)^this "
        "steps: fewer where a step costs more (0: iterations at every scale)",
        "schedule",
        low=0,
        high=4,
    )
    ema_decay: float | None = setting(
        None,
        "output the bias-corrected moving average of the iterates with this decay",
        "schedule",
        low=0,
        high=1,
        open_high=True,
    )
    ema_window: float = setting(
        0.0,
        "above 0: the moving average spans this fraction of each scale's steps (its decay "
        "1 - 1/(fraction x steps), replacing ema_decay), so short scales average few iterates",
        "schedule",
        low=0,
        high=1,
    )
    converge_tol: float = setting(
        0.0,
        "end a scale early once the image changes by less than this (mean absolute) per "
        "50 steps (0: every iteration)",
        "schedule",
        low=0,
    )
    paper_exact: bool = setting(
        False,
        "the paper's exact settings: fp32, every iteration, its FaceID loss (slower)",
        "method",
    )
    first_padding: str = setting(
        "zeros",
        "padding of the feature network's first conv (replicate: Crowson's)",
        "advanced",
        choices=("zeros", "replicate"),
    )
    optimizer: str = setting("lbfgs", "optimiser", "schedule", choices=OPTIMIZERS)
    lr: float | None = setting(
        None, "step size (unset: L-BFGS 1.0, Adam 0.02)", "schedule", low=0, open_low=True
    )
    lr_end: float = setting(
        1.0,
        "Adam: the step size at the last step of each scale, as a fraction of lr, reached "
        "linearly (1: constant)",
        "schedule",
        low=0,
        high=1,
    )
    init: str = setting(
        "content",
        "start image: content (the photograph), mean (ImageNet's mean colour, neural-style's "
        "start for the papers' noise), noise (mid-grey plus Gaussian noise), gray, uniform, "
        "style-mean or instant (the feed-forward result)",
        "schedule",
        choices=INITS,
    )
    seed: int = setting(
        0, "random seed; the same seed repeats a run", "method", low=0, high=2**63 - 1
    )
    device: str = setting("cpu", "cpu, cuda or cuda:N", "advanced", worker=True)
    precision: str = setting(
        "auto",
        "bf16: autocast of the feature networks, about 2x faster on GPUs and CPUs with bf16 "
        "units, 20-30x slower without; fp32: the papers' precision; auto: bf16 where fast",
        "advanced",
        choices=PRECISIONS,
    )
    layout: str = setting(
        "auto",
        "memory layout of the feature network's input: nchw, channels-last, or auto: the "
        "faster on this machine (measured on its first run, then cached)",
        "advanced",
        choices=LAYOUTS,
    )
    backbone: str = setting(
        DEFAULT_BACKBONE,
        "feature network: vgg19-caffe (the papers' VGG-19, offline), vgg19-caffe-full (its "
        "full precision, online), vgg16-hed (offline) or vgg19-imagenet (torchvision's, online)",
        "advanced",
        choices=BACKBONES,
    )
    calibration: str = setting(
        "none",
        "activation scaling: none (raw), torchvision (the size torchvision's VGG-19 gives, "
        "Crowson's tuning) or layer-mean (every layer's mean activation set to 1/8)",
        "advanced",
        choices=CALIBRATIONS,
    )
    convention: str = setting(
        "neural-style",
        "loss normalisation and pixel units: neural-style (Gatys family) or crowson",
        "losses",
        choices=CONVENTION_NAMES,
    )
    pooling: str = setting(
        "max", "pooling in the feature network", "advanced", choices=("max", "avg")
    )
    content_layers: tuple[str, ...] = setting(
        ("relu4_2",), "VGG layers of the content loss", "losses"
    )
    content_weight: float = setting(5.0, "content weight (α)", "losses", low=0)
    group_content_weight: float | None = setting(
        None,
        "the content weight when the photo is a group (3 faces or more; unset: "
        "content_weight as for one sitter)",
        "faces",
        low=0,
    )
    style_layers: tuple[str, ...] = setting(STYLE_LAYERS, "VGG layers of the style loss", "losses")
    style_layer_weights: tuple[float, ...] | None = setting(
        None, "one weight per style layer (unset: 1 each)", "losses", low=0
    )
    style_weight: float = setting(2e2, "style weight (β)", "losses", low=0)
    tv_weight: float = setting(1e-3, "total-variation weight", "losses", low=0)
    style_scale: float = setting(
        1.0,
        "style images are resized to size x this factor on their long side",
        "losses",
        low=0,
        open_low=True,
    )
    style_blend_weights: tuple[float, ...] | None = setting(
        None,
        "relative weights of several style images (normalised to sum 1; unset: equal)",
        "method",
        low=0,
    )
    background_weight: float = setting(
        2e4, "weight γ of the fine-stroke style loss on the background", "portrait-aware", low=0
    )
    background_layers: tuple[str, ...] = setting(
        BACKGROUND_LAYERS,
        "VGG layers of the background style loss, read from x' = x ∘ y",
        "portrait-aware",
    )
    mask: str | None = setting(
        None,
        "person mask image (white = person) instead of segmenting the content",
        "portrait-aware",
        file_prefix="",
    )
    mask_threshold: float = setting(
        0.5,
        "person probability at or above which a pixel belongs to the portrait",
        "portrait-aware",
        low=0,
        high=1,
    )
    mask_feather: float = setting(
        0.0,
        "blur sigma (px) of the background mask's edge (0: a hard edge)",
        "portrait-aware",
        low=0,
    )
    masked_gram_norm: str = setting(
        "background",
        "divide the background Gram by the background's area or the whole image's "
        "(full: the literal Xing et al. eq. 6)",
        "portrait-aware",
        choices=MASKED_GRAM_NORMS,
    )
    face_weight: float = setting(
        0.0,
        "weight of the FaceID loss (FaceNet features of the faces; activations: split "
        "equally over its 5 layers)",
        "faces",
        low=0,
    )
    face_loss: str = setting(
        "embedding",
        "FaceID form: embedding (a hinge on each face's FaceNet embedding cosine at "
        "identity) or activations (the paper's NSE of five early FaceNet layers)",
        "faces",
        choices=FACE_LOSSES,
    )
    identity: float = setting(
        0.9,
        "embedding FaceID: how much of the person each face keeps, 0 paints faces freely "
        ".. 1 keeps each face the person (the hinge's target cosine)",
        "faces",
        low=0,
        high=1,
    )
    face_views: int = setting(
        4,
        "embedding FaceID: random crops of each face per step (shifted, scaled, every "
        "other one mirrored) whose cosines are averaged; 1 reads each face once",
        "faces",
        low=1,
        high=64,
    )
    face_jitter: float = setting(
        0.15,
        "how far the face crops move per step (FaceID views and face style): shift up to "
        "this fraction of the box's side, scale 1 ± half of it; 0 keeps them fixed",
        "faces",
        low=0,
        high=0.5,
    )
    face_style_weight: float = setting(
        0.0,
        "weight of a style loss on each face crop at the face's own scale (paints the "
        "faces like the rest of the picture)",
        "faces",
        low=0,
    )
    mesh_weight: float = setting(0.0, "weight of the FaceMesh landmark loss", "faces", low=0)
    face_every: int = setting(
        1,
        "run the face networks of the FaceID and landmark losses every N steps and reuse "
        "their last gradient in between (1: every step)",
        "faces",
        low=1,
        high=64,
    )
    face_detector: str = setting(
        "mtcnn",
        "face detector, run once on the full-resolution content",
        "faces",
        choices=DETECTORS,
    )
    face_padding: float = setting(
        0.2,
        "pad each face box by this fraction of its longer side on every side, then square it",
        "faces",
        low=0,
    )
    min_face_fraction: float = setting(
        0.01,
        "leave out faces whose box covers less than this fraction of the image",
        "faces",
        low=0,
        high=1,
        open_high=True,
    )
    face_model: str = setting(
        "facenet-casia",
        "network of the FaceID loss: facenet-casia (offline), facenet-vggface2 (online, the "
        "paper's), sface or mobilefacenet (embedding loss only; see face_models)",
        "faces",
        choices=FACE_MODELS,
    )
    face_models: tuple[str, ...] | None = setting(
        None,
        "embedding FaceID: several networks whose hinges are averaged, an ensemble of "
        "families (e.g. facenet-casia sface mobilefacenet; unset: face_model alone)",
        "faces",
        choices=FACE_MODELS,
    )
    background: str = setting(
        "keep",
        "replace the content's background first: keep, color:#RRGGBB or texture:FILE",
        "output",
        file_prefix="texture:",
    )
    person_model: str = setting(
        "auto",
        "person mask of background and of portrait-aware: selfie (MediaPipe selfie "
        "segmentation), modnet (MODNet's alpha matte, soft along hair; 0.5-0.8 s at 512 px) "
        "or auto (modnet for background, selfie for portrait-aware)",
        "output",
        choices=PERSON_MODELS,
    )
    preserve_colors: bool = setting(
        False,
        "keep the content's colours: transfer luminance only (Gatys et al. 2016)",
        "output",
    )
    style_strength: float = setting(
        1.0,
        "instant (and init instant): 0 paints with the content's own style, 1 with the "
        "style's; in between, the style embeddings are interpolated",
        "method",
        low=0,
        high=1,
    )

    @property
    def identity_models(self) -> tuple[str, ...]:
        """The networks of the FaceID loss: ``face_models``, or ``face_model`` alone."""
        return self.face_models if self.face_models else (self.face_model,)

    @property
    def autocast(self) -> bool:
        """Whether the feature networks run under bfloat16 autocast (``auto`` asks
        PyTorch, imported here, whether bfloat16 is fast on the device)."""
        if self.precision == "auto":
            from ..engine import bf16_is_fast

            return bf16_is_fast(self.device)
        return self.precision == "bf16"

    def validate(self) -> None:
        """Raise SettingsError naming the first setting out of range: each setting's own
        type, choices and bounds (:class:`Spec`), then the rules between settings."""
        for name, spec in SPECS.items():
            value, kind = getattr(self, name), KINDS[name]
            if not kind.accepts(value):
                raise SettingsError(f"{name} must be {kind.describe()}, not {value!r}", name)
            spec.check(name, value)
        if not self.style_layers:
            raise SettingsError("style_layers needs at least one layer", "style_layers")
        if self.style_blend_weights and not sum(self.style_blend_weights) > 0:
            raise SettingsError("style_blend_weights needs a weight above 0", "style_blend_weights")
        style_side = round(self.size * self.style_scale)
        if style_side > MAX_SIZE:
            raise SettingsError(
                f"style_scale {self.style_scale} makes the style images {style_side} px on "
                f"their long side, over {MAX_SIZE}",
                "style_scale",
            )
        if self.style_layer_weights is not None and len(self.style_layer_weights) != len(
            self.style_layers
        ):
            raise SettingsError(
                "style_layer_weights needs one weight per style layer", "style_layer_weights"
            )
        known = layer_names(BACKBONES[self.backbone].arch)
        for name in ("content_layers", "style_layers", "background_layers"):
            unknown = [layer for layer in getattr(self, name) if layer not in known]
            if unknown:
                raise SettingsError(
                    f"{name}: {', '.join(map(printable, unknown))} not in {self.backbone} (layers: "
                    f"{', '.join(n for n in known if n.startswith('relu'))})",
                    name,
                )
        if not (DEVICE.fullmatch(self.device) and _torch_reads(self.device)):
            raise SettingsError(
                f"device must be 'cpu' or 'cuda[:N]', not {self.device!r}", "device"
            )
        exact = paper_exact_settings(self.method)
        if self.paper_exact and any(getattr(self, k) != v for k, v in exact.items()):
            raise SettingsError(f"paper_exact needs {exact}", "paper_exact")
        parse_background(self.background)
        if self.face_models is not None and not self.face_models:
            raise SettingsError(
                "face_models needs at least one network (unset: face_model alone)", "face_models"
            )
        models = self.identity_models
        if self.face_loss == "activations" and (len(models) > 1 or models[0] not in FACENET_MODELS):
            field = "face_models" if self.face_models else "face_model"
            raise SettingsError(
                f"{field}: the activations FaceID loss reads one FaceNet network "
                f"({' or '.join(FACENET_MODELS)}); the others need face_loss embedding",
                field,
            )


def _torch_reads(device: str) -> bool:
    """Whether PyTorch reads ``device`` as that device (PyTorch imported only for a device
    with an index: it reads cpu and cuda as themselves)."""
    if device in ("cpu", "cuda"):
        return True
    import torch

    try:
        return str(torch.device(device)) == device
    except RuntimeError:
        return False


SPECS: dict[str, Spec] = {f.name: f.metadata["spec"] for f in dataclasses.fields(Settings)}
"""Every setting's :class:`Spec`, in field order."""
WORKER_SETTINGS = tuple(name for name, spec in SPECS.items() if spec.worker)
"""Settings of the machine that runs, not of the job: a resumed run may change them."""
JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string"}


@dataclass(frozen=True)
class Kind:
    """A setting's Python type: ``base`` (bool, int, float or str), a tuple of them when
    ``many``, None allowed when ``optional``."""

    base: type
    many: bool
    optional: bool

    @classmethod
    def of(cls, hint: Any) -> Kind:
        """The kind of a type hint of :class:`Settings`."""
        options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        plain = [option for option in options if option is not type(None)]
        many = typing.get_origin(plain[0]) is tuple
        base = typing.get_args(plain[0])[0] if many else plain[0]
        return cls(base, many, len(plain) < len(options))

    def describe(self) -> str:
        """The JSON type in words: "an integer", "a list of numbers", ..."""
        name = JSON_TYPES[self.base]
        return f"a list of {name}s" if self.many else f"{'an' if name == 'integer' else 'a'} {name}"

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` has this type: a JSON value, or a Python one (a tuple for a
        list, numpy numbers); a bool is no number, a number no bool."""
        if value is None:
            return self.optional
        if self.many:
            return isinstance(value, list | tuple) and all(self._item(item) for item in value)
        return self._item(value)

    def normalise(self, value: Any) -> Any:
        """``value`` as this kind when it is one: a sequence as a tuple, each number a
        Python number of the base type (an integer a float for a number, infinite beyond
        floats); anything else unchanged, for :meth:`Settings.validate` to refuse."""
        if value is None or not self.accepts(value):
            return value
        if self.many:
            return tuple(self._plain(item) for item in value)
        return self._plain(value)

    def _plain(self, item: Any) -> Any:
        try:
            return self.base(item)
        except OverflowError:  # an integer beyond any float
            return math.inf if item > 0 else -math.inf

    def _item(self, value: Any) -> bool:
        if isinstance(value, bool) or self.base is bool:
            return isinstance(value, bool) and self.base is bool
        if self.base is float:
            return isinstance(value, numbers.Real)
        if self.base is int:
            return isinstance(value, numbers.Integral)
        return isinstance(value, self.base)


KINDS: dict[str, Kind] = {
    name: Kind.of(hint) for name, hint in typing.get_type_hints(Settings).items()
}
"""Every setting's :class:`Kind`."""


def paper_exact_settings(method: str) -> dict[str, Any]:
    """Everything ``paper_exact`` sets for ``method``."""
    return {**PAPER_EXACT, **METHODS[method].paper_settings}


def resolve_settings(method: str, overrides: Mapping[str, Any] | None = None) -> Settings:
    """The settings of ``method`` with ``overrides`` applied (None values are ignored),
    validated; lists become tuples and integers floats where the setting is a number."""
    if method not in METHODS:
        raise SettingsError(
            f"unknown method {method!r}; choose from {', '.join(METHODS)}", "method"
        )
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = sorted(set(given) - set(SPECS))
    if unknown:
        raise SettingsError(
            f"unknown setting(s) {', '.join(map(printable, unknown))}; valid: "
            f"{', '.join(sorted(SPECS))}",
            unknown[0],
        )
    exact = paper_exact_settings(method) if given.get("paper_exact") else {}
    values: dict[str, Any] = {**METHODS[method].defaults, **exact, **given, "method": method}
    settings = Settings(**{name: KINDS[name].normalise(v) for name, v in values.items()})
    settings.validate()
    return settings


def parse_settings(method: str, values: Mapping[str, Any]) -> Settings:
    """The settings of a job from untrusted JSON: ``method`` and an object of setting
    names and values (null: the method's default, for a setting that may be unset).

    SettingsError (its ``field`` set) names the first unknown setting, one of the wrong
    JSON type (a boolean is no number), a non-finite or out-of-range value, a value naming
    a file on the server (``mask``, ``background: texture:FILE``: a job sends files as
    uploads) and a worker setting (``device``: the worker's, not the job's).
    """
    if not isinstance(method, str) or method not in METHODS:
        raise SettingsError(f"method must be one of {', '.join(METHODS)}", "method")
    if not isinstance(values, Mapping):
        raise SettingsError("settings must be an object of setting names and values")
    for name, value in values.items():
        spec = SPECS.get(name)
        if spec is None:
            raise SettingsError(f"{printable(str(name))}: unknown setting", str(name))
        if spec.worker:
            raise SettingsError(f"{name} is the worker's to choose, not a job's", name)
        if spec.names_file(value):
            raise SettingsError(
                f"{name}: {value!r} names a file on the server; send the file with the job",
                name,
            )
        if not KINDS[name].accepts(value):
            raise SettingsError(
                f"{name} must be {KINDS[name].describe()}, not {json.dumps(value)}", name
            )
    if values.get("method", method) != method:
        raise SettingsError(f"method is {method!r}, not {values['method']!r}", "method")
    return resolve_settings(method, values)


def settings_json(settings: Settings) -> dict[str, Any]:
    """Every setting as JSON values (tuples as lists)."""
    return json.loads(json.dumps(dataclasses.asdict(settings)))


def job_settings(settings: Settings) -> dict[str, Any]:
    """What a job computes, as JSON values: every setting but the worker's (the identity
    a resumed run checks, the JSON stored with a job)."""
    values = settings_json(settings)
    for name in WORKER_SETTINGS:
        del values[name]
    return values


def method_defaults() -> dict[str, Settings]:
    """Every method's default settings."""
    return {name: resolve_settings(name) for name in METHODS}


def settings_schema() -> dict[str, Any]:
    """A JSON-schema-like description of the settings, for a web form.

    {"groups": {group: description}, "methods": {name: {"description", "notes", "groups"}},
    "default_method", "fields": [...]}; each field (``method`` aside): name, type
    (boolean, integer, number, string or array with ``items``), nullable, help, group,
    choices, minimum or exclusiveMinimum, maximum or exclusiveMaximum (when bounded),
    defaults (per method), methods (those that read it), file (names a server file, so not
    accepted in a job's JSON; ``file_prefix``: which values do) and worker.
    """
    defaults = {name: settings_json(values) for name, values in method_defaults().items()}
    fields = []
    for name, spec in SPECS.items():
        if name == "method":
            continue
        kind = KINDS[name]
        entry: dict[str, Any] = {
            "name": name,
            "type": "array" if kind.many else JSON_TYPES[kind.base],
            "nullable": kind.optional,
            "help": spec.help,
            "group": spec.group,
        }
        if kind.many:
            entry["items"] = JSON_TYPES[kind.base]
        if spec.choices:
            entry["choices"] = list(spec.choices)
        if spec.low is not None:
            entry["exclusiveMinimum" if spec.open_low else "minimum"] = spec.low
        if spec.high is not None:
            entry["exclusiveMaximum" if spec.open_high else "maximum"] = spec.high
        entry["defaults"] = {method: values[name] for method, values in defaults.items()}
        entry["methods"] = [
            method.name for method in METHODS.values() if spec.worker or spec.group in method.groups
        ]
        entry["file"] = spec.file_prefix is not None
        if spec.file_prefix is not None:
            entry["file_prefix"] = spec.file_prefix
        entry["worker"] = spec.worker
        fields.append(entry)
    return {
        "groups": dict(GROUPS),
        "methods": {
            name: {
                "description": method.description,
                "notes": method.notes,
                "groups": list(method.groups),
            }
            for name, method in METHODS.items()
        },
        "default_method": Settings().method,
        "fields": fields,
    }
