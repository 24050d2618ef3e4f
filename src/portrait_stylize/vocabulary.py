"""The settings' vocabulary, without PyTorch: the names settings choose among, the
tables behind them, the least image side and the form of a background.

Each is defined here once and imported by the modules that compute with it (features,
losses, engine, faces, ...), so that the settings schema (:mod:`.methods.settings`), and
with it the CLI's ``--help`` and its argument checks, import no PyTorch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from .errors import SettingsError


@dataclass(frozen=True)
class BackboneSpec:
    """A feature network: architecture, weights and input convention.

    The trunk sees ``(rgb * input_scale - mean) / std`` for an RGB image in [0, 1].
    """

    name: str
    arch: str
    weights: str
    input_scale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    description: str

    @property
    def zero_input(self) -> tuple[float, float, float]:
        """The RGB colour in [0, 1] that the trunk sees as 0: the training set's mean."""
        r, g, b = (value / self.input_scale for value in self.mean)
        return r, g, b


_VGG19_CAFFE = BackboneSpec(
    name="vgg19-caffe",
    arch="vgg19",
    weights="vgg19-caffe",
    input_scale=255.0,
    mean=(123.68, 116.779, 103.939),
    std=(1.0, 1.0, 1.0),
    description="original Caffe VGG-19 (the papers' network), 8-bit codebook, offline",
)
BACKBONES: dict[str, BackboneSpec] = {
    spec.name: spec
    for spec in (
        BackboneSpec(
            name="vgg16-hed",
            arch="vgg16",
            weights="vgg16-hed",
            input_scale=255.0,
            mean=(122.67892, 116.66877, 104.00699),
            std=(1.0, 1.0, 1.0),
            description="VGG-16 from HED, Caffe convention (offline default)",
        ),
        _VGG19_CAFFE,
        replace(
            _VGG19_CAFFE,
            name="vgg19-caffe-full",
            weights="vgg19-caffe-full",
            description="original Caffe VGG-19, full precision (online)",
        ),
        BackboneSpec(
            name="vgg19-imagenet",
            arch="vgg19",
            weights="vgg19-imagenet",
            input_scale=1.0,
            mean=(0.485, 0.456, 0.406),
            std=(0.229, 0.224, 0.225),
            description="torchvision ImageNet VGG-19, retrained (Crowson's network; online)",
        ),
    )
}
"""The feature networks by name (:mod:`.features` builds them)."""
DEFAULT_BACKBONE = "vgg19-caffe"
CALIBRATIONS = ("none", "torchvision", "layer-mean")
"""How a feature network's activations are scaled (:mod:`.features`)."""

VGG_BLOCKS: dict[str, tuple[tuple[int, ...], ...]] = {
    "vgg16": ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)),
    "vgg19": ((64, 64), (128, 128), (256,) * 4, (512,) * 4, (512,) * 4),
}
"""Channels per conv layer, per block (the "D" and "E" configurations of Simonyan &
Zisserman; :mod:`.nets.vgg` builds them)."""


def layer_names(arch: str) -> list[str]:
    """Names of the trunk's modules in order: conv1_1, relu1_1, ..., pool5."""
    names = []
    for block, widths in enumerate(VGG_BLOCKS[arch], start=1):
        for index in range(1, len(widths) + 1):
            names += [f"conv{block}_{index}", f"relu{block}_{index}"]
        names.append(f"pool{block}")
    return names


STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
"""The style layers of Gatys et al. 2016 (and of the style distance in ``metrics``)."""
CONVENTION_NAMES = ("neural-style", "crowson")
"""The loss conventions, in the order of :data:`.losses.CONVENTIONS`."""
MASKED_GRAM_NORMS = ("background", "full")
"""What a masked Gram is divided by: the background's area or the whole image's."""
OPTIMIZERS = ("lbfgs", "adam")
DETECTORS = ("mtcnn", "blazeface")
FACE_LOSSES = ("embedding", "activations")
FACE_MODELS = ("facenet-casia", "facenet-vggface2", "sface", "mobilefacenet")
"""The face-recognition networks a FaceID loss may read (facenet-msceleb and dlib judge
the results: in no loss)."""
FACENET_MODELS = ("facenet-casia", "facenet-vggface2")
PERSON_MODELS = ("auto", "selfie", "modnet")
"""The person masks of ``--background`` and portrait-aware: MediaPipe's selfie segmentation
(a thresholded 256 px probability), MODNet's alpha matte (a soft edge, hair included), or
auto: MODNet for ``--background``, selfie segmentation for portrait-aware."""
"""Those of :data:`FACE_MODELS` that are FaceNet (the only ones the activations loss reads)."""
MIN_SIDE = 16
"""The shortest side the feature networks take, in pixels: their four poolings before
relu5_1 halve it to one pixel (one fewer and a pooling has nothing left to pool)."""


def parse_background(spec: str) -> tuple[str, str]:
    """Split a background setting into (kind, value): ("keep", ""), ("color", "#RRGGBB")
    or ("texture", FILE). Raises SettingsError for anything else."""
    kind, _, value = spec.partition(":")
    if (kind == "keep" and not value) or (kind == "texture" and value):
        return kind, value
    if kind == "color" and re.fullmatch(r"#[0-9a-fA-F]{6}", value):
        return kind, value
    raise SettingsError(f"background must be keep, color:#RRGGBB or texture:FILE, not {spec!r}")
