"""ANTs (ANTsPy, ``ants.apply_transforms`` = ``antsApplyTransforms``) applied to the files ``monai_avsm.register``
writes reproduces the project's own warped labels, in both directions, with the single-file fields and with the
separable affine + deformable form. Skipped without ANTsPy (the ``bench`` extra; CI installs it with ``test``)."""

from __future__ import annotations

import importlib.util
import unittest

import nibabel as nib
import numpy as np

from tests.apps._shared import registered, sample_pair

HAS_ANTS = importlib.util.find_spec("ants") is not None
PAIR = sample_pair() if HAS_ANTS else None


def _inside_brain_agreement(ants_label: np.ndarray, ours: np.ndarray) -> float:
    inside = (ants_label > 0) | (ours > 0)
    return float((np.round(ants_label)[inside] == ours[inside]).mean())


@unittest.skipUnless(HAS_ANTS, "ANTsPy is not installed (pip install antspyx, or the 'test'/'bench' extra)")
@unittest.skipIf(HAS_ANTS and PAIR is None, "the sample data needs the demo extra")
class TestANTsRoundTrip(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import ants

        cls.ants = ants
        cls.files = registered()["files"]
        cls.fixed = ants.image_read(PAIR["fixed"])
        cls.moving = ants.image_read(PAIR["moving"])
        cls.fixed_label = ants.image_read(PAIR["fixed_label"])
        cls.moving_label = ants.image_read(PAIR["moving_label"])

    def _apply(self, reference, label, transforms, **kwargs) -> np.ndarray:
        out = self.ants.apply_transforms(reference, label, transforms, interpolator="nearestNeighbor", **kwargs)
        return out.numpy()

    def _ours(self, key: str) -> np.ndarray:
        return np.asarray(nib.load(self.files[key]).dataobj)

    def test_forward(self):
        ours = self._ours("warped_label")
        for transforms in (
            [self.files["displacement_field"]],
            [self.files["deformable_field"], self.files["affine.mat"]],  # SyN's fwdtransforms order
        ):
            agree = _inside_brain_agreement(self._apply(self.fixed, self.moving_label, transforms), ours)
            self.assertGreaterEqual(agree, 0.99, transforms)

    def test_inverse(self):
        ours = self._ours("inverse_warped_label")
        cases = [
            ([self.files["inverse_displacement_field"]], {}),
            # SyN's invtransforms order: ANTsPy inverts a leading .mat of a two-item list by itself
            ([self.files["affine.mat"], self.files["inverse_deformable_field"]], {}),
            (
                [self.files["inverse_affine.mat"], self.files["inverse_deformable_field"]],
                {"whichtoinvert": [False, False]},
            ),
        ]
        for transforms, kwargs in cases:
            agree = _inside_brain_agreement(self._apply(self.moving, self.fixed_label, transforms, **kwargs), ours)
            self.assertGreaterEqual(agree, 0.99, transforms)

    def test_images_match(self):
        """The warped image too (linear interpolation), relative to its intensity range."""
        ours = self._ours("warped").astype(np.float64)
        theirs = self.ants.apply_transforms(self.fixed, self.moving, [self.files["displacement_field"]]).numpy()
        inside = ours > 0.05 * ours.max()
        err = np.abs(theirs[inside] - ours[inside]).max() / ours.max()
        self.assertLess(err, 1e-3)


if __name__ == "__main__":
    unittest.main()
