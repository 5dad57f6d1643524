"""P-Net, R-Net and O-Net in torch, layer for layer the authors' det1/det2/det3 (same Caffe layer names).

The architecture is read from the deploy description in `fastmtcnn.weights.convert.ARCHITECTURES`, so the
torch module, the exported prototxt and the shipped files cannot drift apart. The nets work in Caffe's
orientation: they take the authors' transposed blob (N, 3, W, H), RGB, `(x - 127.5) * 0.0078125`
(`samples.to_caffe_orientation` turns our (N, 3, H, W) crops into it), and the first fully connected layer
flattens (C, H, W) like Caffe, so every parameter has exactly its Caffe blob's shape and meaning.
"""
from __future__ import annotations

import math
from typing import Dict, NamedTuple, Optional

import torch
from torch import nn

from ..caffe import CaffeLayer, CaffeNet, conv_window, num_output, output_shape, pool_window
from ..weights.convert import deploy_net

#: Stage name -> weight file stem.
STEMS = {"pnet": "det1", "rnet": "det2", "onet": "det3"}
#: Dropout ratio of O-Net's drop5 while training (the deploy file has no ratio; 0.25 as in common ports).
DROPOUT = 0.25


class HeadOutputs(NamedTuple):
    """Raw head outputs, (N, k) each: face logits (k=2, before prob1's softmax), box offsets (4),
    landmarks (10: five x fractions then five y fractions of the box) or None for P-Net and R-Net."""

    logits: torch.Tensor
    offsets: torch.Tensor
    landmarks: Optional[torch.Tensor]


class MTCNNNet(nn.Module):
    """One MTCNN stage built from its Caffe deploy description; modules are named after the Caffe layers.

    forward(x (N, 3, W, H)) -> HeadOutputs; `probabilities(x)` applies prob1's softmax.
    P-Net is fully convolutional: on a 12x12 input its heads are 1x1 and are flattened to (N, k).
    """

    def __init__(self, stage: str):
        super().__init__()
        if stage not in STEMS:
            raise ValueError(f"unknown stage {stage!r}: pass one of {', '.join(STEMS)}")
        self.stage, self.stem = stage, STEMS[stage]
        self.deploy: CaffeNet = deploy_net(self.stem)
        self.input_size = self.deploy.input_shape[2]
        self.layers = nn.ModuleDict()
        shapes = {self.deploy.input_name: tuple(self.deploy.input_shape)}
        for layer in self.deploy.layers:
            bottom = shapes[layer.bottoms[0]]
            self.layers[layer.name] = _module_for(layer, bottom)
            shapes[layer.tops[0]] = output_shape(layer, bottom)
        softmax = next(layer for layer in self.deploy.layers if layer.type == "Softmax")
        self.logits_blob = softmax.bottoms[0]
        heads = [name for name in self.deploy.output_names() if name != softmax.tops[0]]
        self.offsets_blob = heads[0]
        self.landmarks_blob = heads[1] if len(heads) > 1 else None

    def blobs(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Every Caffe blob of the net for input x (N, 3, W, H), in-place layers overwrite their blob."""
        values = {self.deploy.input_name: x}
        for layer in self.deploy.layers:
            source = values[layer.bottoms[0]]
            if layer.type == "InnerProduct" and source.dim() > 2:
                source = source.flatten(1)
            values[layer.tops[0]] = self.layers[layer.name](source)
        return values

    def forward(self, x: torch.Tensor) -> HeadOutputs:
        values = self.blobs(x)
        flat = [values[name].flatten(1) if name else None
                for name in (self.logits_blob, self.offsets_blob, self.landmarks_blob)]
        return HeadOutputs(*flat)

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """Face probabilities (N, 2) (prob1), as the exported net computes them."""
        return torch.softmax(self.forward(x).logits, dim=1)

    def initialize(self, generator: torch.Generator) -> None:
        """Random weights for training from scratch: Xavier-uniform kernels, zero biases, PReLU slopes 0.25."""
        for name, module in self.layers.items():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                bound = (6.0 / (_fan_in(module) + _fan_out(module))) ** 0.5
                with torch.no_grad():
                    module.weight.uniform_(-bound, bound, generator=generator)
                    module.bias.zero_()
            elif isinstance(module, nn.PReLU):
                nn.init.constant_(module.weight, 0.25)


def _fan_in(module: nn.Module) -> int:
    return module.weight[0].numel()


def _fan_out(module: nn.Module) -> int:
    return module.weight.shape[0] * module.weight[0, 0].numel()


def _module_for(layer: CaffeLayer, bottom: tuple) -> nn.Module:
    """The torch module for one Caffe layer whose input blob has shape `bottom` (N, C[, H, W])."""
    if layer.type == "Convolution":
        window = conv_window(layer)
        return nn.Conv2d(bottom[1], num_output(layer), window.kernel, window.stride, window.pad)
    if layer.type == "Pooling":
        window = pool_window(layer)
        return nn.MaxPool2d(window.kernel, window.stride, window.pad, ceil_mode=True)
    if layer.type == "PReLU":
        return nn.PReLU(bottom[1])
    if layer.type == "InnerProduct":
        return nn.Linear(math.prod(bottom[1:]), num_output(layer))
    if layer.type == "Dropout":
        return nn.Dropout(DROPOUT)
    if layer.type == "Softmax":
        return nn.Softmax(dim=1)
    raise ValueError(f"layer {layer.name!r}: type {layer.type!r} has no torch module")


def check_dropout(ratio: float) -> float:
    """`ratio` as a float if it is a dropout ratio in [0, 1), else a ValueError saying so."""
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"dropout ratio must be in [0, 1), e.g. 0 or 0.25, got {ratio}")
    return float(ratio)


def set_dropout(net: nn.Module, ratio: float) -> None:
    """Set the ratio of every dropout layer of `net` (O-Net's drop5) to `ratio` in [0, 1)."""
    ratio = check_dropout(ratio)
    for module in net.modules():
        if isinstance(module, nn.Dropout):
            module.p = ratio


def build_net(stage: str, generator: Optional[torch.Generator] = None) -> MTCNNNet:
    """A stage randomly initialised from `generator` (or torch's default one)."""
    net = MTCNNNet(stage)
    net.initialize(generator if generator is not None else torch.default_generator)
    return net

