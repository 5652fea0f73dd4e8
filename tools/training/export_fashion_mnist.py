#!/usr/bin/env python3
"""Exports Fashion-MNIST images as PNG files for `mcv eval` / `mcv classify`.

  python3 tools/training/export_fashion_mnist.py --data DIR --out OUT [--split t10k] [--limit N]
      OUT/<class index>_<label>/<image index>.png, an ImageFolder tree whose class folders sort in
      class-index order (0_T-shirt_top ... 9_Ankle_boot), so
      `mcv eval --model fmnist-vim --weights vision/weights/fmnist_vim.safetensors --data OUT`
      scores the test set exactly as train_fashion_mnist.py did.
  python3 tools/training/export_fashion_mnist.py --data DIR --demo OUT
      one test image per class, the first of each class in the test set, named
      <label>_<test index>.png (the bundled tools/demo-data/fashion/ images).

The PNGs are 8-bit grayscale, pixel for pixel the IDX data. Needs numpy and Pillow.
"""

import argparse
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import fmnist_configs as fc  # noqa: E402


def safe_label(label):
    return label.replace("/", "_").replace(" ", "_")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=pathlib.Path, required=True, help="folder with the Fashion-MNIST IDX files")
    ap.add_argument("--out", type=pathlib.Path, help="ImageFolder tree to write")
    ap.add_argument("--demo", type=pathlib.Path, help="folder for one image per class")
    ap.add_argument("--split", choices=("t10k", "train"), default="t10k")
    ap.add_argument("--limit", type=int, default=0, help="export only the first N images")
    args = ap.parse_args()
    if not args.out and not args.demo:
        ap.error("give --out and/or --demo")
    from PIL import Image

    images, labels = fc.load_split(args.data, args.split)
    if args.out:
        n = len(labels) if not args.limit else min(args.limit, len(labels))
        width = len(str(len(labels) - 1))
        dirs = [args.out / f"{c}_{safe_label(name)}" for c, name in enumerate(fc.CLASSES)]
        for d in dirs:
            d.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.fromarray(images[i]).save(dirs[labels[i]] / f"{i:0{width}d}.png")
        print(f"{args.out}: {n} {args.split} images in {len(dirs)} class folders")
    if args.demo:
        args.demo.mkdir(parents=True, exist_ok=True)
        for c, name in enumerate(fc.CLASSES):
            i = int((labels == c).nonzero()[0][0])
            path = args.demo / f"{safe_label(name)}_{i}.png"
            Image.fromarray(images[i]).save(path)
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
