"""The PNG preview of a registration: panels, size, 2D, the overwrite rule of every writer, and the matplotlib hint."""

from __future__ import annotations

import math
import os
import struct
import sys
import tempfile
import unittest
from unittest import mock

import torch

from monai_avsm.functional import identity_map, warp_image
from monai_avsm.visualize import write_preview_png
from tests.utils import real_volume


class TestPreview(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.tmp = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def test_refuse_overwrite_and_create_folders(self):
        def write(p, o):
            return write_preview_png(p, torch.rand(1, 8, 9, 7), torch.rand(1, 8, 9, 7), overwrite=o)

        path = os.path.join(self.tmp, "a", "b", "preview.png")
        self.assertEqual(write(path, False), path)
        self.assertTrue(os.path.isfile(path))
        with self.assertRaises(FileExistsError) as ctx:
            write(path, False)
        self.assertIn(path, str(ctx.exception))
        write(path, True)

    def test_preview_png(self):
        fixed = real_volume()[0].float()
        phi = identity_map(fixed.shape[1:]) + 0.03 * torch.sin(math.pi * identity_map(fixed.shape[1:]).flip(1))
        warped = warp_image(fixed.unsqueeze(0), phi)[0]
        for name, kwargs in (("full.png", {"phi": phi, "moving": fixed}), ("plain.png", {})):
            path = write_preview_png(os.path.join(self.tmp, name), fixed, warped, **kwargs)
            with open(path, "rb") as f:
                head = f.read(24)
            self.assertEqual(head[:8], b"\x89PNG\r\n\x1a\n")
            width, height = struct.unpack(">II", head[16:24])
            self.assertEqual(height, 900)  # 3 rows (axes) of 3 inches at 100 dpi
            self.assertEqual(width, 1500 if kwargs else 900)  # moving | fixed | warped | checkerboard | grid
            self.assertGreater(os.path.getsize(path), 20_000)
        # 2D
        sl = fixed[..., 12]
        path = write_preview_png(os.path.join(self.tmp, "2d.png"), sl, sl, phi=identity_map(sl.shape[1:]))
        self.assertTrue(os.path.getsize(path) > 5_000)
        with mock.patch.dict(sys.modules, {"matplotlib.figure": None, "matplotlib.backends.backend_agg": None}):
            with self.assertRaisesRegex(ImportError, "pip install matplotlib"):
                write_preview_png(os.path.join(self.tmp, "x.png"), fixed, warped)


if __name__ == "__main__":
    unittest.main()
