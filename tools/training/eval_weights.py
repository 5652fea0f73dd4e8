#!/usr/bin/env python3
"""Scores a trained weights file on the Fashion-MNIST test set with tools/training/models.py, on
the CPU, in the input mapping of the registered preprocessing: the Python side of
`mcv eval --model fmnist-<family> --weights FILE --data <export_fashion_mnist.py tree>`.

  /usr/bin/python3 tools/training/eval_weights.py --data DIR vision/weights/fmnist_vim.safetensors [...]
      [--limit N] [--float64] [--json OUT]
"""

import argparse
import json
import pathlib
import sys

import torch

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import fmnist_configs as fc  # noqa: E402
import models  # noqa: E402
import st_io  # noqa: E402
from train_fashion_mnist import to_input  # noqa: E402


def family_of(path):
    """The fmnist configuration a weights file belongs to (by its file name fmnist_<family>)."""
    stem = pathlib.Path(path).stem
    for key, cfg in fc.MODELS.items():
        if stem == f"fmnist_{cfg['family']}":
            return key
    raise SystemExit(f"{path}: expected a file named fmnist_<family>.safetensors")


@torch.no_grad()
def score(path, images, labels, float64=False, batch=250):
    key = family_of(path)
    cfg = fc.MODELS[key]
    model = models.build(cfg["family"], cfg["args"])
    model.load_state_dict(st_io.load_file(path), strict=True)
    model.eval()
    if float64:
        model.double()
    x_all = torch.from_numpy(fc.resize_images(images, cfg["input_size"]))
    logits = []
    for i in range(0, len(x_all), batch):
        x = to_input(x_all[i:i + batch])
        logits.append(model(x.double() if float64 else x).float())
    logits = torch.cat(logits)
    pred = logits.argmax(1)
    y = torch.from_numpy(labels)
    per_class = [{"class": c, "images": int((y == c).sum()), "correct": int((pred[y == c] == c).sum())}
                 for c in range(10)]
    return {"model": cfg["name"], "weights": str(path), "images": len(y), "correct": int((pred == y).sum()),
            "top1": float((pred == y).double().mean() * 100), "per_class": per_class}, logits


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights", nargs="+", type=pathlib.Path)
    ap.add_argument("--data", type=pathlib.Path, required=True)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--float64", action="store_true")
    ap.add_argument("--json", type=pathlib.Path)
    args = ap.parse_args()
    images, labels = fc.load_split(args.data, "t10k")
    if args.limit:
        images, labels = images[:args.limit], labels[:args.limit]
    results = []
    for w in args.weights:
        r, _ = score(w, images, labels, args.float64)
        results.append(r)
        print(f"{r['model']}: top-1 {r['top1']:.2f}% ({r['correct']}/{r['images']})  per class correct "
              + " ".join(str(c["correct"]) for c in r["per_class"]))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
