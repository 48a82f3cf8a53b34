"""Small corpora cut from the real 1604 table page: real print, a few seconds to analyse."""

from pathlib import Path

import numpy as np
from PIL import Image

REAL_PAGE = (Path(__file__).parents[2] / "shared" / "data" / "real" / "tables"
             / "1921_pifferi_sfera_1604_p368.jpg")
TOPS = (300, 560, 820, 1080)
"""Top rows (px) of the crops: each 240 x 320 px crop holds other numbers."""


def write_real_crops(folder: Path, count: int = 3) -> Path:
    """``folder`` with ``crop0.png`` ... : ``count`` crops of the real page (different numbers
    on each)."""
    folder.mkdir(parents=True, exist_ok=True)
    grey = np.asarray(Image.open(REAL_PAGE).convert("L"))
    for k, top in enumerate(TOPS[:count]):
        Image.fromarray(grey[top: top + 240, 200:520]).save(folder / f"crop{k}.png")
    return folder
