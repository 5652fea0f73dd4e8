#!/usr/bin/env python3
"""Writes tests/fixtures/fmnist_parity/demo_reference.safetensors: for the bundled demo images
(tools/demo-data/fashion/*.png, sorted by name) the preprocessed pixels at each input size and the
logits of each trained model (vision/weights/fmnist_<family>.safetensors), computed with
tools/training/models.py in float64 on the CPU.

  /usr/bin/python3 tools/training/make_demo_reference.py

tests/vision/test_embedded_models.cpp checks mcv's preprocessing and the C++ models against it, so
the shipped weights are checked end to end (PNG -> input tensor -> logits), not only the
architecture on random weights.
"""

import pathlib
import sys

import numpy as np
import torch

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
import fmnist_configs as fc  # noqa: E402
import models  # noqa: E402
import st_io  # noqa: E402
from train_fashion_mnist import to_input  # noqa: E402


def main():
    from PIL import Image
    pngs = sorted((ROOT / "tools" / "demo-data" / "fashion").glob("*.png"))
    if not pngs:
        raise SystemExit("no demo images under tools/demo-data/fashion")
    gray = np.stack([np.asarray(Image.open(p).convert("L")) for p in pngs])
    out = {}
    for key, cfg in fc.MODELS.items():
        size = cfg["input_size"]
        x = to_input(torch.from_numpy(fc.resize_images(gray, size)))
        out[f"pixels.{size}"] = x[:, 0].contiguous()   # the three channels are equal
        weights = ROOT / "vision" / "weights" / f"fmnist_{cfg['family']}.safetensors"
        model = models.build(cfg["family"], cfg["args"])
        model.load_state_dict(st_io.load_file(weights), strict=True)
        model = model.double().eval()
        with torch.no_grad():
            out[f"logits.{cfg['family']}"] = model(x.double()).float()
        pred = out[f"logits.{cfg['family']}"].argmax(1).tolist()
        print(cfg["name"], [fc.CLASSES[i] for i in pred])
    dest = ROOT / "tests" / "fixtures" / "fmnist_parity" / "demo_reference.safetensors"
    st_io.save_file(out, dest, metadata={"images": ",".join(p.name for p in pngs),
                                         "written_by": "tools/training/make_demo_reference.py"})
    print(dest)


if __name__ == "__main__":
    main()
