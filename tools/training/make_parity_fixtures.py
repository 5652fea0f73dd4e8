#!/usr/bin/env python3
"""Writes the parity fixtures tests/fixtures/fmnist_parity/<family>/ (oracle folder format, see
../shared/oracles/README.md): a reduced-width copy of each embedded Fashion-MNIST configuration
(same flags and input size, fewer/narrower layers so the files stay small) with perturbed random
weights, an input batch, and the output of tools/training/models.py computed in float64.

  /usr/bin/python3 tools/training/make_parity_fixtures.py [OUT_DIR]

`mcv check-oracle tests/fixtures/fmnist_parity/*` and tests/vision/test_embedded_models.cpp check
the C++ port against them: the training code and the C++ loaders then compute the same function,
so the trained weights mean the same thing in both.
"""

import json
import pathlib
import sys

import torch

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import fmnist_configs as fc  # noqa: E402
import models  # noqa: E402
import st_io  # noqa: E402

OFFICIAL = {
    "vim": {"repo": "hustvl/Vim", "file": "vim/models_mamba.py", "constructor": "VisionMamba"},
    "vmamba": {"repo": "MzeroMiko/VMamba", "file": "classification/models/vmamba.py", "constructor": "VSSM"},
    "mambavision": {"repo": "NVlabs/MambaVision", "file": "mambavision/models/mamba_vision.py",
                    "constructor": "MambaVision"},
}

# Narrower versions of fc.MODELS[...]["args"]: every other argument is the embedded model's.
REDUCED = {
    "vim": {"depth": 2, "embed_dim": 32},
    "vmamba": {"depths": [1, 1, 2, 1], "dims": 8},
    "mambavision": {"dim": 8, "in_dim": 8, "depths": [1, 1, 3, 2], "num_heads": [1, 1, 2, 2], "mlp_ratio": 2},
}


def perturb(model, gen):
    """Moves every tensor away from its initial value, as the official oracles do, so a loader
    that drops, swaps or transposes one gives a visibly wrong answer."""
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            noise = torch.randn(t.shape, generator=gen)
            if name.endswith(("A_log", "A_b_log", "A_logs")):
                t += 0.1 * noise
            elif name.endswith("running_var"):
                t *= torch.exp(0.1 * noise)
            elif t.dim() <= 1:
                t += 0.05 * noise
            else:
                t += 0.02 * noise


def make(key, out_root, seed):
    cfg = fc.MODELS[key]
    args = dict(cfg["args"])
    args.update(REDUCED[key])
    size = cfg["input_size"]
    torch.manual_seed(seed)
    model = models.build(cfg["family"], args).eval()
    gen = torch.Generator().manual_seed(seed + 1)
    perturb(model, gen)
    x = torch.randn(2, 3, size, size, generator=gen)
    with torch.no_grad():
        out32 = model(x)
        out64 = model.double()(x.double())
    err = (out32.double() - out64).abs().max().item()
    rel = ((out32.double() - out64).norm() / out64.norm()).item()
    folder = out_root / f"fmnist_{key}_reduced"
    folder.mkdir(parents=True, exist_ok=True)
    weights = {k: (v.float() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    st_io.save_file(weights, folder / "weights.safetensors")
    st_io.save_file({"input": x, "output": out64.float()}, folder / "io.safetensors")
    config = {
        "name": folder.name,
        "family": cfg["family"],
        "official": dict(OFFICIAL[key], args=args),
        "input_shape": list(x.shape),
        "inputs": {"input": {"shape": list(x.shape), "dtype": "float32"}},
        "output_shape": list(out64.shape),
        "dtype": "float32",
        # About 20x the float32-vs-float64 difference of the PyTorch model, with floors.
        "tolerance": {"max_abs": float(f"{max(20 * err, 2e-6 * max(1.0, out64.abs().max().item())):.2g}"),
                      "rel_l2": float(f"{max(20 * rel, 2e-6):.2g}")},
        "observed_fp32_gpu_vs_fp64_cpu": {},
        "observed_fp32_cpu_vs_fp64_cpu": {"output": {"max_abs": err, "rel_l2": rel,
                                                     "ref_max_abs": out64.abs().max().item()}},
        "seeds": {"torch_manual_seed_before_build": seed, "perturbation_and_input": seed + 1},
        "notes": (f"Reduced-width copy of the embedded {cfg['name']} configuration (tools/training/"
                  f"fmnist_configs.py; changed: {', '.join(REDUCED[key])}), built by tools/training/models.py "
                  "(the pure-PyTorch training definition, checked against the official oracles), weights "
                  "perturbed after initialisation, output computed in float64 on the CPU from the stored "
                  "float32 weights and input. Written by tools/training/make_parity_fixtures.py."),
    }
    (folder / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    n = sum(v.numel() for v in weights.values())
    print(f"{folder}: {n} tensor elements, fp32-vs-fp64 max_abs {err:.2g} rel_l2 {rel:.2g}")


def main():
    root = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parents[1] / "tests" / "fixtures" / "fmnist_parity"
    for i, key in enumerate(fc.MODELS):
        make(key, root, 100 + 10 * i)


if __name__ == "__main__":
    main()
