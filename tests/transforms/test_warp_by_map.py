"""WarpByMapd: warping items with a predicted map (identity, a known voxel shift, dict predictions, labels)."""

from __future__ import annotations

import unittest

import torch

from monai_avsm.functional.maps import identity_map
from monai_avsm.transforms import WarpByMapd
from tests.utils import real_slice, tissue_labels


class TestWarpByMapd(unittest.TestCase):
    def test_identity_and_shift(self):
        image = real_slice((32, 40))[0]  # (1, 32, 40)
        label = tissue_labels(image)
        phi = identity_map((32, 40), dtype=torch.float64)
        out = WarpByMapd(keys=["image", "label"], map_key="pred")(
            {"image": image, "label": label, "pred": {"map": phi}}
        )
        torch.testing.assert_close(out["image_warped"], image.to(out["image_warped"].dtype), atol=1e-6, rtol=0)
        self.assertTrue(torch.equal(out["label_warped"], label))
        self.assertEqual(out["label_warped"].dtype, label.dtype)
        # pull from 2 voxels further along axis 1: warped[:, i, j] = source[:, i, j + 2]
        shift = phi.clone()
        shift[:, 1] += 2 * 2.0 / (40 - 1)
        out = WarpByMapd(keys="label", map_key="phi")({"label": label[None], "phi": shift})
        self.assertTrue(torch.equal(out["label_warped"][0, :, :, :-2], label[:, :, 2:]))

    def test_errors(self):
        with self.assertRaisesRegex(KeyError, "no 'pred'"):
            WarpByMapd(keys="image")({"image": torch.rand(1, 4, 4)})
        with self.assertRaisesRegex(KeyError, "has no 'map'"):
            WarpByMapd(keys="image")({"image": torch.rand(1, 4, 4), "pred": {"warped": 1}})


if __name__ == "__main__":
    unittest.main()
