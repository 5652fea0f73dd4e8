#!/usr/bin/env python3
"""Checks tools/training/models.py against the official oracles (outputs of the official PyTorch
code, ../shared/oracles by default): builds each model from config.json official.args, loads
weights.safetensors strictly, runs `input` in float64 on the CPU and compares with `output`.

  /usr/bin/python3 tools/training/check_official_oracles.py [ORACLE_DIR...]

Folders whose configuration this training code does not implement (e.g. VMamba forward_type v0)
are reported as skipped. Exit status 1 when any checked folder disagrees.
"""

import json
import pathlib
import sys

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import models  # noqa: E402
import st_io  # noqa: E402

DEFAULT_ROOT = pathlib.Path(__file__).resolve().parents[3] / "shared" / "oracles"


def check(folder):
    cfg = json.loads((folder / "config.json").read_text())
    family = cfg.get("family")
    if family not in models.CONSTRUCTORS:
        return "skip", f"family {family!r}"
    try:
        model = models.build(family, cfg["official"]["args"])
    except NotImplementedError as e:
        return "skip", str(e)
    weights = st_io.load_file(folder / "weights.safetensors")
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if missing or unexpected:
        return "FAIL", f"missing {missing[:5]}... unexpected {unexpected[:5]}..."
    io = st_io.load_file(folder / "io.safetensors")
    model = model.double().eval()
    with torch.no_grad():
        out = model(io["input"].double())
    ref = io["output"].double()
    max_abs = (out - ref).abs().max().item()
    rel = ((out - ref).norm() / ref.norm()).item()
    tol = cfg["tolerance"]
    ok = max_abs <= tol["max_abs"] and rel <= tol["rel_l2"]
    return ("ok" if ok else "FAIL"), f"max_abs {max_abs:.3g} (tol {tol['max_abs']:.3g})  rel_l2 {rel:.3g} (tol {tol['rel_l2']:.3g})"


def main():
    dirs = [pathlib.Path(a) for a in sys.argv[1:]]
    if not dirs:
        dirs = sorted(p for p in DEFAULT_ROOT.iterdir()
                      if (p / "config.json").is_file() and json.loads((p / "config.json").read_text()).get("family")
                      in models.CONSTRUCTORS)
    failed = False
    for d in dirs:
        status, detail = check(d)
        failed |= status == "FAIL"
        print(f"{status:4s} {d.name}: {detail}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
