"""RandSyntheticDeformationd / RandSwapPaird on real anatomy: exact ground truth, magnitudes in millimetres,
inverse maps, seeds."""

from __future__ import annotations

import unittest

import torch
import torch.nn.functional as F
from monai.data import MetaTensor
from monai.metrics import compute_dice
from parameterized import parameterized

from monai_avsm.functional import compose_maps, identity_map, map_to_ddf, warp_image, warp_label
from monai_avsm.metrics import compute_folds
from monai_avsm.transforms import RandSwapPaird, RandSyntheticDeformation, RandSyntheticDeformationd
from tests.utils import real_slice, real_volume, tissue_labels


def volume_item():
    img = MetaTensor(real_volume()[0].clone(), affine=torch.diag(torch.tensor([2.0, 2.0, 2.0, 1.0])))
    return {"image": img, "label": tissue_labels(img)}


def displacement_mm(phi: torch.Tensor, spacing) -> torch.Tensor:
    """|phi(x) - x| in millimetres, (*S)."""
    sp = torch.tensor(spacing, dtype=phi.dtype).reshape(1, -1, *([1] * (phi.ndim - 1)))
    return (map_to_ddf(phi.unsqueeze(0)) * sp).norm(dim=1)[0]


def dice(a: torch.Tensor, b: torch.Tensor) -> float:
    onehot = lambda x: F.one_hot(x.long()[:, 0], 3).movedim(-1, 1)  # noqa: E731
    return float(compute_dice(onehot(a), onehot(b), include_background=False).mean())


class TestRandSyntheticDeformationd(unittest.TestCase):
    def test_pair_with_known_map_and_inverse(self):
        t = RandSyntheticDeformationd(displacement_mm=6.0).set_random_state(seed=0)
        d = t(volume_item())
        self.assertEqual(
            sorted(d),
            ["fixed", "fixed_label", "image", "label", "moving", "moving_label", "true_inverse_map", "true_map"],
        )
        phi, phi_inv = d["true_map"].unsqueeze(0), d["true_inverse_map"].unsqueeze(0)
        self.assertIsInstance(d["fixed"], MetaTensor)
        torch.testing.assert_close(d["fixed"].affine, d["image"].affine)
        self.assertEqual(d["fixed_label"].dtype, d["label"].dtype)
        # the stored map reproduces the fixed image from the moving one
        warped = warp_image(d["moving"].as_tensor().unsqueeze(0), phi)[0]
        torch.testing.assert_close(warped, d["fixed"].as_tensor(), atol=1e-5, rtol=0)
        # the inverse takes the fixed labels back onto the moving labels (inside a 4-voxel margin: what the affine
        # moved out of the 33x41x25 field of view cannot come back)
        back = warp_label(d["fixed_label"].unsqueeze(0), phi_inv)[..., 4:-4, 4:-4, 4:-4]
        self.assertGreater(dice(back, d["moving_label"].unsqueeze(0)[..., 4:-4, 4:-4, 4:-4]), 0.95)
        self.assertLess(dice(d["fixed_label"].unsqueeze(0), d["moving_label"].unsqueeze(0)), 0.95)
        # inverse consistency in the interior, and no folds
        err = (compose_maps(phi, phi_inv) - identity_map(phi.shape[2:]))[..., 4:-4, 4:-4, 4:-4]
        self.assertLess(float(err.abs().max()), 0.02)
        self.assertEqual(float(compute_folds(phi)["count"][0]), 0.0)
        self.assertEqual(float(compute_folds(phi_inv)["count"][0]), 0.0)

    @parameterized.expand([[(1.0, 1.0, 1.0)], [(1.0, 2.0, 3.0)]])
    def test_smooth_part_magnitude_in_mm(self, spacing):
        img = torch.rand(1, 24, 20, 16)
        t = RandSyntheticDeformation(rotation_deg=0, scale=0, translation_mm=0, displacement_mm=5.0).set_random_state(1)
        t(img, spacing=spacing)
        phi, _ = t.deformation.maps(img.shape[1:])
        largest = float(displacement_mm(phi, spacing).max())
        self.assertGreater(largest, 0.8 * 5.0)
        self.assertLess(largest, 1.05 * 5.0)

    def test_translation_in_mm_with_anisotropic_spacing(self):
        spacing = (1.0, 2.0, 3.0)
        t = RandSyntheticDeformation(rotation_deg=0, scale=0, translation_mm=6.0, displacement_mm=0).set_random_state(2)
        img = torch.rand(1, 10, 12, 14)
        t(img, spacing=spacing)
        phi, _ = t.deformation.maps(img.shape[1:])
        sp = torch.tensor(spacing).reshape(1, 3, 1, 1, 1)
        shift_mm = map_to_ddf(phi.unsqueeze(0).float()) * sp  # constant over the image
        torch.testing.assert_close(shift_mm, shift_mm[..., :1, :1, :1].expand_as(shift_mm), atol=1e-4, rtol=0)
        self.assertTrue(bool((shift_mm.abs() <= 6.0 + 1e-4).all()))
        self.assertGreater(float(shift_mm.abs().max()), 1.0)

    def test_seeded_and_prob(self):
        item = {"image": torch.rand(1, 12, 14, 10), "label": torch.randint(0, 3, (1, 12, 14, 10))}
        a = RandSyntheticDeformationd().set_random_state(seed=5)(item)
        b = RandSyntheticDeformationd().set_random_state(seed=5)(item)
        c = RandSyntheticDeformationd().set_random_state(seed=6)(item)
        torch.testing.assert_close(a["true_map"], b["true_map"])
        self.assertGreater(float((a["true_map"] - c["true_map"]).abs().max()), 1e-3)
        off = RandSyntheticDeformationd(prob=0.0)(item)
        torch.testing.assert_close(off["true_map"], identity_map((12, 14, 10))[0])
        torch.testing.assert_close(off["fixed"], item["image"], atol=1e-5, rtol=0)

    def test_2d_slice(self):
        sl = real_slice((48, 56))[0]
        d = RandSyntheticDeformationd(label_key=None).set_random_state(seed=3)({"image": sl})
        self.assertEqual(tuple(d["true_map"].shape), (2, 48, 56))
        self.assertEqual(float(compute_folds(d["true_map"].unsqueeze(0))["count"][0]), 0.0)
        self.assertNotIn("fixed_label", d)

    def test_ill_inputs(self):
        with self.assertRaisesRegex(ValueError, "2D or 3D"):
            RandSyntheticDeformationd()({"image": torch.rand(1, 4, 4, 4, 4), "label": torch.zeros(1, 4, 4, 4, 4)})
        with self.assertRaisesRegex(KeyError, "image"):
            RandSyntheticDeformationd()({"img": torch.rand(1, 8, 8)})
        with self.assertRaisesRegex(ValueError, "displacement_mm"):
            RandSyntheticDeformationd(displacement_mm=-1.0)
        with self.assertRaisesRegex(ValueError, "same spatial shape"):
            RandSyntheticDeformationd()({"image": torch.rand(1, 8, 8), "label": torch.zeros(1, 8, 9)})


class TestRandSwapPaird(unittest.TestCase):
    def test_swaps_everything_or_nothing(self):
        d = {"moving": 1, "fixed": 2, "moving_label": 3, "fixed_label": 4, "true_map": 5, "true_inverse_map": 6}
        self.assertEqual(
            RandSwapPaird(prob=1.0)(d),
            {"moving": 2, "fixed": 1, "moving_label": 4, "fixed_label": 3, "true_map": 6, "true_inverse_map": 5},
        )
        self.assertEqual(RandSwapPaird(prob=0.0)(d), d)
        self.assertEqual(RandSwapPaird(prob=1.0)({"moving": 1, "fixed": 2}), {"moving": 2, "fixed": 1})
        with self.assertRaisesRegex(KeyError, "moving_label"):
            RandSwapPaird(prob=1.0)({"moving": 1, "fixed": 2, "moving_label": 3})


if __name__ == "__main__":
    unittest.main()


class TestTrainingChain(unittest.TestCase):
    def test_training_chain_on_sample_layout(self):
        """The documented augmentation chain (docs/data.md §3b) on a real volume and label written as NIfTI."""
        import tempfile

        import nibabel as nib
        import numpy as np
        from monai.transforms import (
            Compose,
            EnsureChannelFirstd,
            LoadImaged,
            RandAdjustContrastd,
            RandBiasFieldd,
            RandGaussianNoised,
        )

        vol = real_volume()[0, 0].numpy()
        with tempfile.TemporaryDirectory() as tmp:
            affine = np.diag([2.0, 2.0, 2.0, 1.0])
            nib.save(nib.Nifti1Image(vol.astype(np.float32), affine), f"{tmp}/image.nii.gz")
            nib.save(
                nib.Nifti1Image(tissue_labels(torch.from_numpy(vol)).numpy().astype(np.uint8), affine),
                f"{tmp}/label.nii.gz",
            )
            chain = Compose(
                [
                    LoadImaged(keys=["image", "label"]),
                    EnsureChannelFirstd(keys=["image", "label"]),
                    RandSyntheticDeformationd(image_key="image", label_key="label"),
                    RandBiasFieldd(keys=["fixed"], prob=1.0),
                    RandAdjustContrastd(keys=["fixed"], prob=1.0, gamma=(0.8, 1.25)),
                    RandGaussianNoised(keys=["moving", "fixed"], prob=1.0, std=0.02),
                    RandSwapPaird(prob=1.0),
                ]
            )
            chain.set_random_state(seed=0)
            d = chain({"image": f"{tmp}/image.nii.gz", "label": f"{tmp}/label.nii.gz"})
        self.assertEqual(tuple(d["moving"].shape), (1, 33, 41, 25))
        self.assertEqual(tuple(d["true_map"].shape), (3, 33, 41, 25))
        # after the swap, "moving" is the deformed image and "true_map" the inverse: moving o true_map ~ fixed
        warped = warp_label(d["moving_label"].unsqueeze(0).long(), d["true_map"].unsqueeze(0))
        inner = (slice(None), slice(None), slice(4, -4), slice(4, -4), slice(4, -4))
        self.assertGreater(dice(warped[inner], d["fixed_label"].unsqueeze(0).long()[inner]), 0.95)
