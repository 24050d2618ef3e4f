"""``portrait-stylize inspect IMAGE``: what the perception networks see in a photo.

Detects faces (box, score, landmarks), runs FaceMesh on each face and the person
segmentation; prints a summary or JSON and optionally draws it all over the image.
PyTorch and the networks are imported by :func:`run`, not for ``--help``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from ..paths import check_output_path
from ..vocabulary import DETECTORS

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from ..faces import Faces

MESH_PADDING = 0.25  # FaceMesh expects the face box enlarged 1.5x
MESH_SIZE = 192
TINT = (0.0, 0.9, 0.4)  # person overlay colour
BOX_COLOUR = (255, 60, 60)
LANDMARK_COLOUR = (255, 230, 0)
MESH_COLOUR = (0, 200, 255)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Detect faces, face landmarks and the person mask in IMAGE; print them and "
        "optionally draw them over the image."
    )
    parser.add_argument("image", help="photograph to inspect")
    parser.add_argument("-o", "--output", help="write an overlay image here (.png, .jpg, ...)")
    parser.add_argument("--json", action="store_true", help="print JSON to stdout")
    parser.add_argument(
        "--detector", default="mtcnn", choices=DETECTORS, help="face detector (default: mtcnn)"
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")


def _mesh(image: torch.Tensor, faces: Faces) -> torch.Tensor:
    """FaceMesh landmarks (N,468,2) of each face, in image pixels."""
    from ..faces import crop_faces, crop_to_image, face_landmarks, square_boxes

    boxes = square_boxes(faces.boxes, MESH_PADDING)
    landmarks, _ = face_landmarks(crop_faces(image, boxes, MESH_SIZE))
    return crop_to_image(landmarks[..., :2], boxes, MESH_SIZE)


def _overlay(
    image: torch.Tensor, person: torch.Tensor, faces: Faces, mesh: torch.Tensor
) -> Image.Image:
    """The image (3,H,W) with the person mask (H,W) tinted and the faces drawn on it."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    from ..masks import tint

    tinted = tint(image, person, TINT).permute(1, 2, 0).numpy()
    canvas = Image.fromarray(np.round(tinted * 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    width = max(1, round(max(canvas.size) / 400))
    font = ImageFont.load_default(size=8 + 4 * width)
    for box, score, points, dots in zip(
        faces.boxes.tolist(), faces.scores.tolist(), faces.landmarks, mesh, strict=True
    ):
        for x, y in dots.tolist():
            draw.point((x, y), fill=MESH_COLOUR)
        draw.rectangle(box, outline=BOX_COLOUR, width=width)
        draw.text((box[0], box[1] - width), f"{score:.2f}", fill=BOX_COLOUR, font=font, anchor="lb")
        radius = max(1.5, (box[2] - box[0]) / 40)
        for x, y in points.tolist():
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=LANDMARK_COLOUR)
    return canvas


def run(args: argparse.Namespace) -> int:
    output = check_output_path(args.output, [args.image]) if args.output else None
    import numpy as np
    import torch

    from ..faces import detect_faces
    from ..images import load_image, save_image
    from ..masks import person_mask

    image = load_image(args.image).rgb
    device = torch.device(args.device)
    with torch.no_grad():
        faces = detect_faces(image, args.detector, device)
        person = person_mask(image, device=device)[0, 0].cpu()
        mesh = _mesh(image.to(device), faces).cpu()
    faces = faces.to("cpu")
    fraction = float((person > 0.5).float().mean())
    if not len(faces):
        print(f"note: no face found in {args.image} (detector {args.detector})", file=sys.stderr)
    if args.json:
        rows = [
            {"box": box, "score": score, "landmarks": points}
            for box, score, points in zip(
                faces.boxes.tolist(), faces.scores.tolist(), faces.landmarks.tolist(), strict=True
            )
        ]
        report = {
            "faces": rows,
            "landmark_names": faces.landmark_names,
            "person_fraction": fraction,
        }
        print(json.dumps(report, indent=2))
    else:
        for i, (box, score) in enumerate(
            zip(faces.boxes.tolist(), faces.scores.tolist(), strict=True)
        ):
            corners = ", ".join(f"{v:.0f}" for v in box)
            print(f"face {i}: box ({corners}), score {score:.3f}")
        print(f"person: {fraction:.1%} of the image")
    if output is not None:
        canvas = _overlay(image, person, faces, mesh)
        pixels = torch.from_numpy(np.asarray(canvas, dtype=np.float32) / 255.0)
        save_image(pixels.permute(2, 0, 1), output)
        print(f"saved {output}", file=sys.stderr)
    return 0
