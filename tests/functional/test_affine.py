"""Affine parameters: composition order of the multi-step affine network (paper eq. 1 vs pull-back order)."""

from __future__ import annotations

import unittest

import torch
from parameterized import parameterized

from monai_avsm.functional import (
    affine_to_map,
    compose_maps,
    identity_affine,
    identity_map,
    update_affine,
    warp_image,
)


def small_affine(ndim, seed, scale=0.08):
    g = torch.Generator().manual_seed(seed)
    A = torch.eye(ndim, dtype=torch.float64) + scale * torch.randn(2, ndim, ndim, generator=g, dtype=torch.float64)
    b = scale * torch.randn(2, ndim, generator=g, dtype=torch.float64)
    return A, b


class TestAffineUpdateOrder(unittest.TestCase):
    @parameterized.expand([[2], [3]])
    def test_pullback_order_is_previous_then_update(self, ndim):
        """Default order: phi_t = phi_{t-1} o phi~_t (A_t = A_{t-1} A~_t, b_t = A_{t-1} b~_t + b_{t-1})."""
        cur, upd = small_affine(ndim, 0), small_affine(ndim, 1)
        A, b = update_affine(cur, upd)
        torch.testing.assert_close(A, cur[0] @ upd[0])
        torch.testing.assert_close(b, (cur[0] @ upd[1].unsqueeze(-1)).squeeze(-1) + cur[1])
        shape = (6, 7, 5)[:ndim]
        cur_s, upd_s = (0.8 * cur[0], 0.1 * cur[1]), (0.6 * upd[0], 0.1 * upd[1])  # inner map stays inside
        torch.testing.assert_close(
            affine_to_map(*update_affine(cur_s, upd_s), shape),
            compose_maps(affine_to_map(*cur_s, shape), affine_to_map(*upd_s, shape)),
        )

    @parameterized.expand([[2], [3]])
    def test_paper_order_matches_eq1(self, ndim):
        """order='paper': A_t = A~_t A_{t-1}, b_t = A~_t b_{t-1} + b~_t (paper eq. 1, the authors' code)."""
        cur, upd = small_affine(ndim, 2), small_affine(ndim, 3)
        A, b = update_affine(cur, upd, order="paper")
        torch.testing.assert_close(A, upd[0] @ cur[0])
        torch.testing.assert_close(b, (upd[0] @ cur[1].unsqueeze(-1)).squeeze(-1) + upd[1])

    def test_pullback_order_is_exact_for_residual_updates(self):
        """If each step predicts exactly the residual between the current warp and the target, the pull-back
        order recovers the true affine, the paper order only approximately."""
        shape = (40, 44)
        ident = identity_map(shape, dtype=torch.float64)
        true = (torch.tensor([[[1.1, 0.15], [-0.1, 0.95]]], dtype=torch.float64), torch.tensor([[0.1, -0.05]]).double())
        first = (torch.tensor([[[1.05, 0.1], [0.0, 1.0]]], dtype=torch.float64), torch.tensor([[0.05, 0.0]]).double())
        # the residual phi~ with first o phi~ = true: phi~ = first^-1 o true
        Ai = torch.linalg.inv(first[0])
        resid = (Ai @ true[0], (Ai @ (true[1] - first[1]).unsqueeze(-1)).squeeze(-1))
        A_pb, b_pb = update_affine(first, resid)
        torch.testing.assert_close(A_pb, true[0])
        torch.testing.assert_close(b_pb, true[1])
        A_pa, _ = update_affine(first, resid, order="paper")
        self.assertGreater(float((A_pa - true[0]).abs().max()), 1e-3)
        img = torch.sin(4 * ident[:, :1]) + ident[:, 1:] ** 2
        torch.testing.assert_close(
            warp_image(img, affine_to_map(A_pb, b_pb, shape)), warp_image(img, affine_to_map(*true, shape))
        )

    def test_identity_is_neutral(self):
        cur = small_affine(3, 4)
        ident = identity_affine(2, 3, dtype=torch.float64)
        for order in ("pullback", "paper"):
            A, b = update_affine(cur, ident, order)
            torch.testing.assert_close(A, cur[0])
            torch.testing.assert_close(b, cur[1])

    def test_ill_order_and_shapes(self):
        cur = small_affine(2, 5)
        with self.assertRaisesRegex(ValueError, "pullback"):
            update_affine(cur, cur, order="sideways")
        with self.assertRaisesRegex(ValueError, "'b'"):
            affine_to_map(cur[0], cur[1][:, :1], (4, 4))


if __name__ == "__main__":
    unittest.main()
