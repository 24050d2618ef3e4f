"""Write the demo's inputs, which ship with scikit-image, as PNG files into a folder.

Content: ``astronaut`` (NASA portrait of Eileen Collins, public domain). Style:
``immunohistochemistry`` (a stained tissue micrograph, public domain): scikit-image
ships no painting, and this one has the strong colour and brush-like texture a style
image needs.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image
from skimage import data


def main(folder: str) -> None:
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    Image.fromarray(data.astronaut()).save(out / "astronaut.png")
    Image.fromarray(data.immunohistochemistry()).save(out / "style.png")
    print(f"wrote {out / 'astronaut.png'} and {out / 'style.png'}")


if __name__ == "__main__":
    main(sys.argv[1])
