"""Small networks and a perturbation shared by the network tests (and the AVSM loss tests)."""

from __future__ import annotations

import torch

from monai_avsm.networks.nets import AffineNet, AVSMNet, MomentumUNet, MultiStepAffineNet, VSVFNet

SMALL_UNET = {"channels": (4, 4, 8, 8, 8), "decoder_channels": (8, 4, 4)}
SMALL_AFFINE = {"channels": (4, 8, 8), "hidden": 8}
CASES = [[2, (21, 26)], [3, (11, 14, 9)]]


def perturb_last_layers(net: torch.nn.Module, seed: int = 0, scale: float = 0.05) -> None:
    """Give the zero-initialised output layers small random weights (as after some training)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, AffineNet):
                for p in module.head[-1].parameters():
                    p.copy_(scale * torch.randn(p.shape, generator=g))
            if isinstance(module, MomentumUNet):
                for p in module.out.conv.parameters():
                    p.copy_(scale * torch.randn(p.shape, generator=g))


def small_avsm(ndim: int, **kwargs) -> AVSMNet:
    return AVSMNet(MultiStepAffineNet(ndim, **SMALL_AFFINE), VSVFNet(ndim, **SMALL_UNET), **kwargs)
