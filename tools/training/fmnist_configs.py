"""The embedded Fashion-MNIST models: official constructor arguments, input mapping, data IO.

vision/src/embedded/fmnist_variants.cpp registers the same arguments and Preprocess (its test
compares them with the metadata the training script writes into each weights file).

Input mapping (the registered timm-style eval transform, reproduced by mcv's C++ preprocessing):
the 28x28 gray image becomes RGB (gray replicated), is resized to `input_size` with PIL's bicubic
filter (crop_pct 1.0: the shorter side becomes input_size, then a no-op centre crop; at 28 the
resize is the identity), scaled to [0, 1] and normalised with the Fashion-MNIST training-set
statistics on all three channels.
"""

import gzip
import pathlib
import struct

import numpy as np

MEAN = 0.2860
STD = 0.3530

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
           "Ankle boot"]

MODELS = {
    # Vim: 7x7 patches of 4x4 pixels plus the middle class token (50 tokens), 6 bidirectional
    # Mamba layers; the flags of the released vim_*_midclstok_div2 models.
    "vim": {
        "name": "fmnist-vim",
        "family": "vim",
        "input_size": 28,
        "args": {
            "img_size": 28, "patch_size": 4, "stride": 4, "depth": 6, "embed_dim": 112, "d_state": 16,
            "channels": 3, "num_classes": 10, "drop_path_rate": 0.05, "rms_norm": True,
            "residual_in_fp32": True, "fused_add_norm": True, "final_pool_type": "mean",
            "if_abs_pos_embed": True, "if_rope": False, "if_rope_residual": False, "bimamba_type": "v2",
            "if_cls_token": True, "if_divide_out": True, "use_middle_cls_token": True,
        },
    },
    # VMamba: the VMamba-T[s1l8] recipe (v05_noz SS2D with d_state 1 and ssm_ratio 1, channel-first
    # LayerNorm2d, conv stem v2, 3x3 stride-2 downsampling v3) with 4 stages at 16, 8, 4, 2 pixels.
    "vmamba": {
        "name": "fmnist-vmamba",
        "family": "vmamba",
        "input_size": 64,
        "args": {
            "patch_size": 4, "in_chans": 3, "num_classes": 10, "depths": [2, 2, 3, 1], "dims": 24,
            "ssm_d_state": 1, "ssm_ratio": 1.0, "ssm_dt_rank": "auto", "ssm_act_layer": "silu", "ssm_conv": 3,
            "ssm_conv_bias": False, "ssm_drop_rate": 0.0, "ssm_init": "v0", "forward_type": "v05_noz",
            "mlp_ratio": 2.0, "mlp_act_layer": "gelu", "mlp_drop_rate": 0.0, "gmlp": False,
            "drop_path_rate": 0.05, "patch_norm": True, "norm_layer": "ln2d", "downsample_version": "v3",
            "patchembed_version": "v2", "use_checkpoint": False, "posembed": False, "imgsize": 64,
        },
    },
    # MambaVision: conv stem and conv stages at 16 and 8 pixels, then one window (4x4, 2x2) of
    # MambaVisionMixer + attention blocks per token stage.
    "mambavision": {
        "name": "fmnist-mambavision",
        "family": "mambavision",
        "input_size": 64,
        "args": {
            "dim": 16, "in_dim": 16, "depths": [1, 2, 4, 2], "window_size": [8, 8, 4, 2], "mlp_ratio": 4,
            "num_heads": [2, 2, 4, 4], "drop_path_rate": 0.05, "num_classes": 10,
        },
    },
}


def read_idx(path):
    """An IDX file (optionally gzip-compressed) as a numpy array."""
    path = pathlib.Path(path)
    raw = gzip.open(path, "rb").read() if path.suffix == ".gz" else path.read_bytes()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).copy()
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {data.size} bytes of data for shape {dims}")
    return data.reshape(dims)


def load_split(data_dir, split):
    """(images (N, 28, 28) uint8, labels (N,) int64) of 'train' or 't10k'."""
    d = pathlib.Path(data_dir)

    def find(stem):
        for name in (stem + ".gz", stem):
            if (d / name).is_file():
                return d / name
        raise FileNotFoundError(f"{d}: no {stem}[.gz]")

    images = read_idx(find(f"{split}-images-idx3-ubyte"))
    labels = read_idx(find(f"{split}-labels-idx1-ubyte")).astype(np.int64)
    if images.ndim != 3 or images.shape[0] != labels.shape[0]:
        raise ValueError(f"{d}: {split} images {images.shape} and labels {labels.shape} do not match")
    return images, labels


def resize_images(images, size):
    """(N, H, W) uint8 -> (N, size, size) uint8 with PIL's bicubic resize (identity at the same
    size), as the registered preprocessing does to each channel of the RGB image."""
    if images.shape[1] == size and images.shape[2] == size:
        return images
    from PIL import Image
    bicubic = getattr(Image, "Resampling", Image).BICUBIC
    out = np.empty((images.shape[0], size, size), dtype=np.uint8)
    for i in range(images.shape[0]):
        out[i] = np.asarray(Image.fromarray(images[i]).resize((size, size), bicubic))
    return out
