"""One registration of a real sample pair, shared by the tests of the command line, the Python call and ANTs."""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import tempfile

from tests.utils import sample_dataset


def sample_pair() -> dict[str, str] | None:
    """The first test pair of the sample data (48x56x48 at 4 mm), as absolute paths; ``None`` without the data."""
    root = sample_dataset()
    if root is None:
        return None
    with open(os.path.join(root, "datalist.json")) as f:
        item = json.load(f)["test"][0]
    return {k: os.path.join(root, item[k]) for k in ("moving", "fixed", "moving_label", "fixed_label")}


@functools.lru_cache(maxsize=None)
def registered() -> dict:
    """``monai_avsm.register(..., mode="fast")`` of :func:`sample_pair` with labels (computed once)."""
    import monai_avsm

    pair = sample_pair()
    tmp = tempfile.mkdtemp(prefix="avsm_register_")
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    return monai_avsm.register(
        pair["moving"],
        pair["fixed"],
        os.path.join(tmp, "result"),
        moving_label=pair["moving_label"],
        fixed_label=pair["fixed_label"],
        progress=False,
        outputs={
            "separable": True,
            "jacobian": True,
            "preview": True,
            "inverse_images": True,
        },  # every output, for the tests that read them
        mode="fast",  # the network's path (the accurate default has tests of its own)
    )
