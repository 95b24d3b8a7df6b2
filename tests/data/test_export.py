"""Export to ITK / ANTs / Slicer files: warps and affines applied by ITK (and ANTsPy) equal our own warping.

The acceptance test: a real T1 volume, a known smooth map on a working grid of another size than the native grids,
our warped image on the fixed image's native grid vs. ITK's ``ResampleImageFilter`` with the written displacement
field (``DisplacementFieldTransform``) or affine file (``.tfm``, ``.mat``), and ``ants.apply_transforms``.
"""

from __future__ import annotations

import importlib.util
import math
import os
import tempfile
import unittest

import itk
import nibabel as nib
import numpy as np
import torch

from monai_avsm.data.export import (
    read_affine_transform,
    write_affine_transform,
    write_displacement_field,
    write_image,
)
from monai_avsm.functional import (
    affine_to_map,
    identity_map,
    map_to_world_points,
    ras_to_lps_vectors,
    resample_world,
    theta_to_world_affine,
    voxel_world_points,
    world_displacement,
)
from monai_avsm.functional.world import ras_to_lps_affine
from tests.utils import real_volume

F64 = torch.float64
HAS_ANTS = importlib.util.find_spec("ants") is not None
FLIP = np.diag([-1.0, -1.0, 1.0, 1.0])

# moving: nibabel's T1 with its file geometry (33x41x25, 2 mm, LAS). fixed native: another, oblique grid.
MOVING_NATIVE_SHAPE = (33, 41, 25)
FIXED_NATIVE_SHAPE = (30, 36, 22)
FIXED_WORK_SHAPE = (24, 32, 20)
MOVING_WORK_SHAPE = (20, 28, 18)


def _affine(spacing, origin, flips=(False, False, False), angle=0.0):
    a = np.eye(4)
    d = np.diag([(-s if f else s) for s, f in zip(spacing, flips)])
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    a[:3, :3] = rot @ d
    a[:3, 3] = origin
    return torch.as_tensor(a)


def _working(native, native_shape, working_shape):
    """``Orientationd("RAS")`` + ``Resized``: +RAS axes, same physical box, ``M`` voxels instead of ``N``."""
    a = native.clone()
    for c in range(3):
        col = a[:3, c]
        if col[int(col.abs().argmax())] < 0:
            a[:3, 3] += col * (native_shape[c] - 1)
            a[:3, c] = -col
    scale = torch.eye(4, dtype=F64)
    for c, (n, m) in enumerate(zip(native_shape, working_shape)):
        scale[c, c], scale[c, 3] = n / m, 0.5 * n / m - 0.5
    return a @ scale


def _geometry():
    moving_native = torch.as_tensor(nib.load(_t1_path()).affine, dtype=F64)
    fixed_native = _affine((2.2, 2.1, 2.3), (28.0, -38.0, -20.0), flips=(True, False, False), angle=8.0)
    return (
        fixed_native,
        _working(fixed_native, FIXED_NATIVE_SHAPE, FIXED_WORK_SHAPE),
        moving_native,
        _working(moving_native, MOVING_NATIVE_SHAPE, MOVING_WORK_SHAPE),
    )


def _t1_path():
    from monai_avsm.demo import sample_image_path

    return sample_image_path()


def _theta():
    A = torch.tensor([[1.04, 0.06, -0.03], [-0.05, 0.97, 0.04], [0.02, -0.04, 1.02]], dtype=F64)
    b = torch.tensor([0.05, -0.04, 0.03], dtype=F64)
    return A.unsqueeze(0), b.unsqueeze(0)


def _smooth_map():
    """An affine plus a small sinusoidal displacement, in normalised coordinates on the fixed working grid."""
    A, b = _theta()
    phi = affine_to_map(A, b, FIXED_WORK_SHAPE)
    u = identity_map(FIXED_WORK_SHAPE, dtype=F64)
    bump = torch.stack(
        [torch.sin(math.pi * u[:, (c + 1) % 3]) * torch.cos(0.5 * math.pi * u[:, (c + 2) % 3]) for c in range(3)], 1
    )
    return phi + 0.04 * bump


def _itk_to_torch(image) -> torch.Tensor:
    """ITK scalar image -> ``(i, j, k)`` torch order (ITK arrays are ``(k, j, i)``)."""
    return torch.as_tensor(np.ascontiguousarray(itk.array_from_image(image).transpose(2, 1, 0)).astype(np.float64))


def _itk_double_field(field_f):
    """``itk.Image[itk.Vector[itk.F, 3], 3]`` -> ``itk.Image[itk.Vector[itk.D, 3], 3]`` (what
    ``DisplacementFieldTransform[itk.D, 3]`` takes; ITK Python wraps no reader or array bridge for it)."""
    field_d = itk.Image[itk.Vector[itk.D, 3], 3].New()
    field_d.SetRegions(field_f.GetLargestPossibleRegion())
    field_d.CopyInformation(field_f)
    field_d.Allocate()
    arr = itk.array_from_image(field_f).astype(np.float64)  # (k, j, i, 3)
    vec = itk.Vector[itk.D, 3]
    for k in range(arr.shape[0]):
        for j in range(arr.shape[1]):
            for i in range(arr.shape[2]):
                v = vec()
                v[0], v[1], v[2] = arr[k, j, i]
                field_d.SetPixel([i, j, k], v)
    return field_d


def _itk_resample(moving_path, fixed_path, transform):
    image_type = itk.Image[itk.F, 3]
    moving = itk.imread(moving_path, itk.F)
    fixed = itk.imread(fixed_path, itk.F)
    resample = itk.ResampleImageFilter[image_type, image_type].New()
    resample.SetInput(moving)
    resample.SetTransform(transform)
    resample.SetInterpolator(itk.LinearInterpolateImageFunction[image_type, itk.D].New())
    resample.SetReferenceImage(fixed)
    resample.UseReferenceImageOn()
    resample.SetDefaultPixelValue(0.0)
    resample.Update()
    return _itk_to_torch(resample.GetOutput())


def _interior(points, moving_affine, shape, margin=1.0):
    """Target voxels whose source point lies at least ``margin`` voxels inside the moving image."""
    ndim = len(shape)
    inv = torch.linalg.inv(moving_affine)
    idx = torch.einsum("ij,j...->i...", inv[:ndim, :ndim], points) + inv[:ndim, ndim].reshape(ndim, 1, 1, 1)
    hi = torch.tensor(shape, dtype=F64).reshape(ndim, 1, 1, 1) - 1 - margin
    return ((idx >= margin) & (idx <= hi)).all(0)


class TestRoundTrip(unittest.TestCase):
    """The files, applied by ITK (and ANTs), reproduce our warping on the fixed image's native grid."""

    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.TemporaryDirectory()
        tmp = cls._tmp.name
        cls.fixed_native, cls.fixed_work, cls.moving_native, cls.moving_work = _geometry()
        vol = real_volume()[0]
        cls.moving = (vol.as_tensor() if hasattr(vol, "as_tensor") else vol).float()  # (1, 33, 41, 25)
        cls.moving_path = write_image(os.path.join(tmp, "moving.nii.gz"), cls.moving, cls.moving_native)
        # the fixed image's voxels only serve ITK as the reference grid: the T1 resampled onto it
        ident = voxel_world_points(cls.fixed_native, FIXED_NATIVE_SHAPE)
        fixed = resample_world(cls.moving, cls.moving_native, ident + 3.0)
        cls.fixed_path = write_image(os.path.join(tmp, "fixed.nii.gz"), fixed, cls.fixed_native)
        cls.range = float(cls.moving.max() - cls.moving.min())
        # the deformable map
        cls.phi = _smooth_map()
        cls.points = map_to_world_points(
            cls.phi, cls.fixed_work, cls.moving_work, MOVING_WORK_SHAPE, cls.fixed_native, FIXED_NATIVE_SHAPE
        )
        cls.ours = resample_world(cls.moving.double(), cls.moving_native, cls.points)[0]
        cls.field_path = write_displacement_field(
            os.path.join(tmp, "warp", "fixed_to_moving_Warp.nii.gz"),
            world_displacement(cls.points, cls.fixed_native),
            cls.fixed_native,
        )
        # the affine part alone
        A, b = _theta()
        theta = torch.cat([A, b.unsqueeze(-1)], dim=-1)
        cls.T = theta_to_world_affine(theta, cls.fixed_work, FIXED_WORK_SHAPE, cls.moving_work, MOVING_WORK_SHAPE)
        cls.points_aff = map_to_world_points(
            affine_to_map(A, b, FIXED_WORK_SHAPE),
            cls.fixed_work,
            cls.moving_work,
            MOVING_WORK_SHAPE,
            cls.fixed_native,
            FIXED_NATIVE_SHAPE,
            extrapolation="linear",
        )
        cls.ours_aff = resample_world(cls.moving.double(), cls.moving_native, cls.points_aff)[0]
        cls.mat_paths = {
            s: write_affine_transform(os.path.join(tmp, f"affine{s}"), cls.T) for s in (".tfm", ".mat", ".txt")
        }
        cls.errors = {}

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()
        if cls.errors:
            print("\nround-trip max |ITK/ANTs - ours| / intensity range (interior voxels):", cls.errors)

    def _check(self, name, theirs, ours, points, tol=1e-3):
        mask = _interior(points, self.moving_native, MOVING_NATIVE_SHAPE)
        self.assertGreater(float(mask.double().mean()), 0.5)
        self.assertGreater(float(ours[mask].abs().max()), 0.3 * self.range)  # real anatomy lands in the interior
        err = float((theirs - ours)[mask].abs().max()) / self.range
        type(self).errors[name] = f"{err:.3e}"
        self.assertLess(err, tol, f"{name}: relative max error {err:.2e}")

    def test_field_file_geometry(self):
        """The file is an ITK vector field: NIfTI intent 'vector', RAS geometry of the target grid for nibabel,
        LPS vectors (unchanged by ITK's writer), ITK array order (k, j, i)."""
        img = nib.load(self.field_path)
        self.assertEqual(img.header.get_intent()[0], "vector")
        self.assertEqual(img.shape, (*FIXED_NATIVE_SHAPE, 1, 3))
        np.testing.assert_allclose(img.affine, self.fixed_native.numpy(), atol=1e-4)
        disp = world_displacement(self.points, self.fixed_native)
        stored = torch.as_tensor(np.asarray(img.dataobj)[:, :, :, 0, :], dtype=F64).permute(3, 0, 1, 2)
        torch.testing.assert_close(stored, ras_to_lps_vectors(disp), atol=1e-4, rtol=1e-6)
        # ITK's transform maps the LPS point of a voxel to the LPS source point
        field = itk.imread(self.field_path, itk.Vector[itk.F, 3])
        transform = itk.DisplacementFieldTransform[itk.D, 3].New()
        transform.SetDisplacementField(_itk_double_field(field))
        for ijk in ((0, 0, 0), (5, 17, 9), (29, 35, 21)):
            p = field.TransformIndexToPhysicalPoint(ijk)
            np.testing.assert_allclose(
                np.array(p), (FLIP[:3, :3] @ self.fixed_native[:3].numpy() @ [*ijk, 1.0]), atol=1e-4
            )
            q = np.array(transform.TransformPoint(p))
            np.testing.assert_allclose(q, FLIP[:3, :3] @ self.points[(slice(None), *ijk)].numpy(), atol=1e-4)

    def test_itk_displacement_field(self):
        field = _itk_double_field(itk.imread(self.field_path, itk.Vector[itk.F, 3]))
        transform = itk.DisplacementFieldTransform[itk.D, 3].New()
        transform.SetDisplacementField(field)
        theirs = _itk_resample(self.moving_path, self.fixed_path, transform)
        self._check("itk_field", theirs, self.ours, self.points)

    def test_itk_affine_files(self):
        pts = voxel_world_points(self.fixed_native, FIXED_NATIVE_SHAPE)
        expected = torch.einsum("ij,j...->i...", self.T[:3, :3], pts) + self.T[:3, 3].reshape(3, 1, 1, 1)
        torch.testing.assert_close(self.points_aff, expected, atol=1e-9, rtol=0)
        for suffix, path in self.mat_paths.items():
            with self.subTest(suffix=suffix):
                torch.testing.assert_close(read_affine_transform(path), self.T, atol=1e-12, rtol=0)
                transform = itk.transformread(path)[0]
                theirs = _itk_resample(self.moving_path, self.fixed_path, transform)
                self._check(f"itk_affine{suffix}", theirs, self.ours_aff, self.points_aff)

    @unittest.skipUnless(HAS_ANTS, "ANTsPy (pip install antspyx) is not installed")
    def test_ants_apply_transforms(self):
        import ants

        fixed, moving = ants.image_read(self.fixed_path), ants.image_read(self.moving_path)
        for name, tlist, ours, pts in (
            ("ants_field", [self.field_path], self.ours, self.points),
            ("ants_affine.mat", [self.mat_paths[".mat"]], self.ours_aff, self.points_aff),
        ):
            with self.subTest(name=name):
                out = ants.apply_transforms(fixed=fixed, moving=moving, transformlist=tlist, interpolator="linear")
                theirs = torch.as_tensor(out.numpy(), dtype=F64)  # ANTsPy arrays are in (i, j, k) order
                self.assertEqual(tuple(theirs.shape), FIXED_NATIVE_SHAPE)
                self._check(name, theirs, ours, pts)


class TestWriters(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.tmp = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def test_refuse_overwrite_and_create_folders(self):
        affine = _affine((2.0, 2.0, 2.0), (1.0, 2.0, 3.0))
        cases = {
            "field.nii.gz": lambda p, o: write_displacement_field(p, torch.zeros(3, 4, 5, 6), affine, overwrite=o),
            "affine.tfm": lambda p, o: write_affine_transform(p, torch.eye(4), overwrite=o),
            "affine.mat": lambda p, o: write_affine_transform(p, torch.eye(4), overwrite=o),
            "image.nii.gz": lambda p, o: write_image(p, torch.zeros(1, 4, 5, 6), affine, overwrite=o),
        }
        for name, write in cases.items():
            with self.subTest(name=name):
                path = os.path.join(self.tmp, "a", "b", name)
                self.assertEqual(write(path, False), path)
                self.assertTrue(os.path.isfile(path))
                with self.assertRaises(FileExistsError) as ctx:
                    write(path, False)
                self.assertIn(path, str(ctx.exception))
                write(path, True)

    def test_image_labels_keep_integers_and_geometry(self):
        affine = _affine((1.5, 2.0, 2.5), (10.0, -20.0, 5.0), flips=(True, False, True), angle=20.0)
        labels = torch.randint(0, 7, (1, 6, 7, 8))
        path = write_image(os.path.join(self.tmp, "labels.nii.gz"), labels, affine)
        img = nib.load(path)
        self.assertTrue(np.issubdtype(img.get_data_dtype(), np.integer))
        np.testing.assert_array_equal(np.asarray(img.dataobj), labels[0].numpy())
        np.testing.assert_allclose(img.affine, affine.numpy(), atol=1e-5)
        # ITK reads the same grid in LPS
        itk_img = itk.imread(path)
        lps = FLIP @ affine.numpy()
        np.testing.assert_allclose(np.array(itk.origin(itk_img)), lps[:3, 3], atol=1e-4)
        np.testing.assert_allclose(np.array(itk.spacing(itk_img)), [1.5, 2.0, 2.5], atol=1e-5)
        np.testing.assert_allclose(
            itk.array_from_matrix(itk_img.GetDirection()) * [1.5, 2.0, 2.5], lps[:3, :3], atol=1e-4
        )
        # a MetaTensor brings its own affine
        from monai.data import MetaTensor

        path = write_image(os.path.join(self.tmp, "meta.nii.gz"), MetaTensor(labels.bool(), affine=affine))
        self.assertEqual(nib.load(path).get_data_dtype(), np.uint8)
        with self.assertRaisesRegex(ValueError, "write_image: 'affine' is required"):
            write_image(os.path.join(self.tmp, "x.nii.gz"), labels)

    def test_affine_round_trip_and_errors(self):
        T = torch.eye(4, dtype=F64)
        T[:3, :3] += 0.05 * torch.randn(3, 3, dtype=F64)
        T[:3, 3] = torch.tensor([3.0, -4.0, 5.0])
        for suffix in (".tfm", ".txt", ".mat"):
            path = write_affine_transform(os.path.join(self.tmp, "t" + suffix), T)
            torch.testing.assert_close(read_affine_transform(path), T, atol=1e-12, rtol=0)
        with open(os.path.join(self.tmp, "t.tfm")) as f:
            text = f.read()
        self.assertIn("AffineTransform_double_3_3", text)
        self.assertIn("FixedParameters: 0 0 0", text)
        # the files are byte for byte what ITK's own writers produce (written directly: ITK's transform I/O takes
        # ~12 s to import), in 2D and 3D
        for ndim in (2, 3):
            Tn = torch.eye(ndim + 1, dtype=F64)
            Tn[:ndim, :ndim] += 0.05 * torch.randn(ndim, ndim, dtype=F64)
            Tn[:ndim, ndim] = torch.randn(ndim, dtype=F64)
            lps = ras_to_lps_affine(Tn).numpy()
            ref = itk.AffineTransform[itk.D, ndim].New()
            ref.SetMatrix(itk.matrix_from_array(np.ascontiguousarray(lps[:ndim, :ndim])))
            ref.SetTranslation([float(v) for v in lps[:ndim, ndim]])
            for suffix in (".mat", ".tfm"):
                ours = write_affine_transform(os.path.join(self.tmp, f"ours{ndim}{suffix}"), Tn)
                theirs = os.path.join(self.tmp, f"itk{ndim}{suffix}")
                itk.transformwrite([ref], theirs)
                if suffix == ".mat":
                    with open(ours, "rb") as a, open(theirs, "rb") as b:
                        self.assertEqual(a.read(), b.read())
                torch.testing.assert_close(
                    read_affine_transform(ours), read_affine_transform(theirs), atol=1e-12, rtol=0
                )
        with self.assertRaisesRegex(ValueError, "write_affine_transform: 'path'"):
            write_affine_transform(os.path.join(self.tmp, "t.json"), T)
        with self.assertRaisesRegex(ValueError, "write_displacement_field: 'disp_ras'"):
            write_displacement_field(os.path.join(self.tmp, "f.nii.gz"), torch.zeros(2, 4, 5, 6), torch.eye(4))


if __name__ == "__main__":
    unittest.main()
