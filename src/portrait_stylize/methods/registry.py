"""Every method, declared without PyTorch: its name, description, defaults, source and
notes, and the functions that build it, named and imported on first use.

The code of a method family is its own module here (:mod:`.gatys`, :mod:`.portrait_aware`,
:mod:`.portrait_stylization`, :mod:`.instant`); declaring it here keeps the registry, and
so the settings schema and the CLI's ``--help``, free of PyTorch's import.
"""

from __future__ import annotations

from typing import Any

from .base import OPTIMISED, Method

# gatys.py: content, Gram style and TV terms (Gatys et al. 2016), the base of the rest.
PAPER_START: dict[str, Any] = {"init": "mean"}
"""The Gatys family starts from the photograph; the papers from noise (neural-style's mean
colour here): from there, at the budgets people wait for, the person is lost."""
GATYS = Method(
    name="gatys",
    description="Gatys et al. 2016, paper 1 weights (α, β) = (5, 2e2), L-BFGS from the photo",
    defaults={},
    paper_settings=PAPER_START,
    builder="gatys.build_content_style",
    paper="Gatys, Ecker, Bethge, CVPR 2016 (baseline of Xing et al., ICIP 2018)",
)
GATYS_PLUS = Method(
    name="gatys-plus",
    description="Gatys with the style weight × 20 (paper 1's 'Gatys+')",
    defaults={"style_weight": 4e3},
    paper_settings=PAPER_START,
    builder="gatys.build_content_style",
    paper="Xing et al., ICIP 2018, Fig. 1(c)",
)


# crowson: Katherine Crowson's multi-scale style transfer (style-transfer-pytorch), the
# base of Portrait Stylization: gatys.py's terms under the crowson convention, its defaults.
CROWSON_LAYER_WEIGHTS = tuple(w / 341 for w in (256.0, 64.0, 16.0, 4.0, 1.0))
CROWSON_DEFAULTS: dict[str, Any] = {
    "optimizer": "adam",
    "lr": 0.02,
    "init": "content",
    "min_size": 128,
    "initial_iterations": 1000,
    "iterations": 500,
    "ema_decay": 0.99,
    "converge_tol": 5e-3,
    "first_padding": "replicate",
    "convention": "crowson",
    # Kept on the backbone its weights were balanced on here (docs/backbones.md): on the
    # original VGG-19 in torchvision units the face loss at 0.015 no longer keeps faces.
    "backbone": "vgg16-hed",
    "calibration": "layer-mean",
    "content_weight": 0.015,
    "style_weight": 1.0,
    "style_layer_weights": CROWSON_LAYER_WEIGHTS,
    "tv_weight": 2.0,
}
"""crowson's settings; portrait-stylization starts from them too."""

CROWSON = Method(
    name="crowson",
    description=(
        "Crowson's multi-scale style transfer: Adam (lr 0.02) on scales 128→512 "
        "(√2 apart), normalised squared errors, output the moving average"
    ),
    defaults=CROWSON_DEFAULTS,
    builder="gatys.build_content_style",
    paper="Crowson, style-transfer-pytorch (base of Portrait Stylization)",
)


# portrait_aware.py: Xing et al. 2018 (paper 1), fine style on the background only.
PORTRAIT_AWARE = Method(
    name="portrait-aware",
    description=(
        "Xing et al. 2018: coarse style (relu3_1-relu5_1) on the whole image, fine "
        "style (relu1_1-relu3_1, weight γ = 2e4) on the background only"
    ),
    defaults={"style_layers": ("relu3_1", "relu4_1", "relu5_1")},
    paper_settings=PAPER_START,
    builder="portrait_aware.build_portrait_aware",
    paper="Xing et al., Portrait-aware artistic style transfer, ICIP 2018",
    notes=[
        "person mask: MediaPipe selfie segmentation thresholded at mask_threshold "
        "(the paper: FCN-8s person class), MODNet's matte (--person-model modnet) or "
        "--mask FILE (white = person)",
        "masked Gram normalised by the background area by default "
        "(--masked-gram-norm full: by the whole image's, the literal eq. 6)",
        "starts from the photograph, which keeps the person in its own colours and makes "
        "its portrait the best kept of the three, as in the paper's Table 1; the paper's "
        "start (--paper-exact: the mean colour, as neural-style's for the paper's noise) "
        "leaves a texture in which the person is lost (docs/results-paper1.md)",
    ],
    groups=(*OPTIMISED, "portrait-aware"),
)


# portrait_stylization.py: paper 2, crowson plus FaceID and FaceMesh terms on the faces.
PORTRAIT_STYLIZATION = Method(
    name="portrait-stylization",
    description=(
        "Portrait Stylization: crowson plus a FaceID loss on the faces' FaceNet "
        "embeddings (--identity 0..1) and an optional FaceMesh landmark loss"
    ),
    defaults={
        **CROWSON_DEFAULTS,
        "face_loss": "embedding",
        "face_weight": 0.2,
        "identity": 0.9,
        "face_style_weight": 1.0,
    },
    paper_settings={
        "face_loss": "activations",
        "face_weight": 0.015,
        "face_views": 1,
        "face_jitter": 0.0,
        "face_style_weight": 0.0,
    },
    builder="portrait_stylization.build_portrait_stylization",
    preparer="portrait_stylization.prepare_portrait_stylization",
    paper="Portrait Stylization: Artistic Style Transfer with Auxiliary Networks "
    "for Human Face Stylization (reference defaults)",
    notes=[
        "faces: detected once on the full-resolution content (--face-detector), "
        "padded by --face-padding of their longer side, squared; faces under "
        "--min-face-fraction of the image are left out; no usable face: a warning, "
        "and the run is plain crowson",
        "FaceNet facenet-casia (offline; the paper's: facenet-vggface2, --face-model), "
        "first conv replicate-padded",
        "--identity 0 drops the identity term; the face style term still paints the "
        "faces (with --face-style-weight 0 too, the run is crowson)",
        "the paper's activations loss (--paper-exact): face_weight 0.015 keeps faces "
        "close to the photograph; about 0.001-0.002 paints them on a large single "
        "portrait but loses small faces",
    ],
    groups=(*OPTIMISED, "faces"),
)

FAST_SCHEDULE: dict[str, Any] = {
    "iterations": 150,
    "initial_iterations": None,
    "step_exponent": 0.66,
    "lr": 0.05,
    "lr_end": 0.1,
    "ema_decay": None,
    "ema_window": 0.25,
    "converge_tol": 0.0,
}
"""The default portrait's schedule (docs/performance.md): 150 steps at 128 px, fewer at each
finer scale (60 at 512 px), the step size decaying tenfold within each scale, the moving
average over each scale's last quarter; a fixed budget, so the estimate holds."""
CROWSON_SCHEDULE: dict[str, Any] = {
    **{
        name: CROWSON_DEFAULTS[name]
        for name in FAST_SCHEDULE
        if name in CROWSON_DEFAULTS and name != "converge_tol"  # paper-exact's own: 0
    },
    "step_exponent": 0.0,
    "lr_end": 1.0,
    "ema_window": 0.0,
}
"""Crowson's schedule (paper 2's): what ``--paper-exact`` restores over the fast one."""

PORTRAIT_PAINTING = Method(
    name="portrait-painting",
    description=(
        "portrait-stylization on the original VGG-19 in torchvision's units: the whole "
        "picture painted, each face held by the identity hinge at 1 (weight 1) and the "
        "FaceMesh landmarks"
    ),
    defaults={
        **PORTRAIT_STYLIZATION.defaults,
        "backbone": "vgg19-caffe",
        "calibration": "torchvision",
        "identity": 1.0,
        "face_weight": 1.0,
        "face_style_weight": 0.0,
        "mesh_weight": 1e-3,
        "group_content_weight": 0.06,
        **FAST_SCHEDULE,
    },
    paper_settings={**PORTRAIT_STYLIZATION.paper_settings, **CROWSON_SCHEDULE},
    builder="portrait_stylization.build_portrait_stylization",
    preparer="portrait_stylization.prepare_portrait_stylization",
    paper="this tool's recipe, measured in docs/identity.md",
    notes=[
        "the face style term is off: on this network it paints a square frame around "
        "each face (docs/backbones.md)",
        "a group (3 faces or more) is held by --group-content-weight 0.06 instead of "
        "--content-weight: the bodies stay painted people rather than dissolving "
        "(docs/identity.md)",
    ],
    groups=PORTRAIT_STYLIZATION.groups,
)


# instant.py: Magenta's feed-forward network (Ghiasi et al. 2017), no optimisation.
INSTANT = Method(
    name="instant",
    description=(
        "Magenta's feed-forward arbitrary style network: one forward pass, no "
        "optimisation; --style-strength 0..1"
    ),
    defaults={"iterations": 0},
    renderer="instant.render_instant",
    paper="Ghiasi et al., Exploring the structure of a real-time, arbitrary neural "
    "artistic stylization network, BMVC 2017 (Magenta)",
    notes=[
        "each style image's central square goes in at 256 x 256 (the style network's "
        "size); the content at --size on its long side",
        "several styles: their 100-d embeddings are blended by --style-blend-weights",
    ],
    groups=("method", "output"),
)


METHODS: dict[str, Method] = {
    method.name: method
    for method in (
        GATYS,
        GATYS_PLUS,
        CROWSON,
        PORTRAIT_AWARE,
        PORTRAIT_STYLIZATION,
        PORTRAIT_PAINTING,
        INSTANT,
    )
}
"""Every method by name, in the order the CLI and the web form list them."""
DEFAULT_METHOD = PORTRAIT_PAINTING.name
"""The method of a run that names none (CLI, Python API, web page, batch): the tool's best
picture; the papers' methods are one ``--method`` away."""
