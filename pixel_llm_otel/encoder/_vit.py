"""The vision transformer itself: patch embedding, class token, pre-norm blocks, final norm."""

from __future__ import annotations

import torch
from torch import nn

from ._config import EncoderConfig

__all__ = ["VisionTransformer"]

#: ImageNet normalisation applied to 0..1 RGB input.
IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)


class VisionTransformer(nn.Module):
    """A plain ViT returning the normalised class-token embedding, shape ``(B, embed_dim)``.

    Input: ``(B, 3, image_size, image_size)`` floats in 0..1 (normalised inside).
    """

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        dim = config.embed_dim
        self.patch_embed = nn.Conv2d(
            3, dim, kernel_size=config.patch_size, stride=config.patch_size
        )
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, config.num_patches + 1, dim))
        # Built one by one (not nn.TransformerEncoder, which deep-copies one layer), so each
        # block gets its own initial weights.
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(
                d_model=dim,
                nhead=config.num_heads,
                dim_feedforward=int(dim * config.mlp_ratio),
                dropout=0.0,
                activation="gelu",
                batch_first=True,
                norm_first=True,
            )
            for _ in range(config.num_layers)
        )
        self.norm = nn.LayerNorm(dim)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.mean: torch.Tensor
        self.std: torch.Tensor
        self.register_buffer("mean", torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGE_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        mean: torch.Tensor = self.mean
        std: torch.Tensor = self.std
        x = (images - mean) / std
        x = self.patch_embed(x).flatten(2).transpose(1, 2)  # (B, N, D)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        out: torch.Tensor = self.norm(x[:, 0])
        return out
