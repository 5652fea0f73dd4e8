#!/usr/bin/env python3
"""Trains the embedded Fashion-MNIST models (small Vim, VMamba and MambaVision; configurations in
fmnist_configs.py) and writes, per model, `fmnist_<family>.safetensors` (the state dict under the
official names, float32, with the constructor arguments and test accuracy as metadata) and
`fmnist_<family>.json` (test accuracy, parameter count, training details).

  python3 tools/training/train_fashion_mnist.py --data DIR --out DIR [--models vim,vmamba,mambavision]
          [--parallel] [--time-budget SECONDS]

DIR holds {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] (Debian dataset-fashion-mnist installs
them under /usr/share/datasets/fashion-mnist). Each model trains for a fixed wall-clock budget with
AdamW and a warm-up + cosine learning-rate schedule over the elapsed fraction of that budget, so
a run ends on time on any GPU; --max-steps replaces the budget by a step count (smoke tests).
--parallel trains the models in concurrent processes on the same GPU: the small models leave it
mostly idle between kernel launches, so three processes cost little more wall time than one.
Inputs are mapped exactly as the registered C++ preprocessing maps an image (see
fmnist_configs.py); the reported accuracy is float32 inference on the 10k test images.
Needs torch (1.13 or 2.x), numpy and Pillow; CUDA optional.
"""

import argparse
import json
import math
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import fmnist_configs as fc  # noqa: E402
import models  # noqa: E402
import st_io  # noqa: E402

# Optimisation settings per model (AdamW, label smoothing 0.1). `shift` is the random translation
# in input pixels (2 at 28 px, scaled at 64 px), applied with a horizontal flip. Vim and VMamba
# issue ~3000 small kernels per step whatever the batch (the scan runs step by step), so a larger
# batch buys epochs almost for free; MambaVision issues ~1200.
TRAIN = {
    "vim": {"lr": 2e-3, "weight_decay": 0.05, "shift": 2, "batch_size": 512},
    "vmamba": {"lr": 2e-3, "weight_decay": 0.05, "shift": 4, "batch_size": 512},
    "mambavision": {"lr": 2e-3, "weight_decay": 0.05, "shift": 4, "batch_size": 256},
}
NO_DECAY_SUFFIXES = ("A_log", "A_b_log", "A_logs", "pos_embed", "cls_token")


def log(tag, msg):
    print(f"[{time.strftime('%H:%M:%S')}] {tag}: {msg}", flush=True)


def prepare_data(data_dir, sizes, train_subset=0, test_subset=0):
    """{size: (train_x, train_y, test_x, test_y)} with images resized as the preprocessing does."""
    train_x, train_y = fc.load_split(data_dir, "train")
    test_x, test_y = fc.load_split(data_dir, "t10k")
    if train_subset:
        train_x, train_y = train_x[:train_subset], train_y[:train_subset]
    if test_subset:
        test_x, test_y = test_x[:test_subset], test_y[:test_subset]
    return {s: (fc.resize_images(train_x, s), train_y, fc.resize_images(test_x, s), test_y) for s in sizes}


def to_input(x_u8):
    """(B, S, S) uint8 -> normalised (B, 3, S, S) float32: ToTensor + Normalize of gray-as-RGB."""
    x = (x_u8.float() / 255.0 - fc.MEAN) / fc.STD
    return x.unsqueeze(1).expand(-1, 3, -1, -1).contiguous()


def augment(x_u8, shift):
    """Random translation by up to `shift` pixels (zero = black fill) and horizontal flip."""
    b, h, w = x_u8.shape
    dev = x_u8.device
    x = x_u8
    if shift:
        padded = F.pad(x.float(), (shift, shift, shift, shift))
        dy = torch.randint(0, 2 * shift + 1, (b,), device=dev)
        dx = torch.randint(0, 2 * shift + 1, (b,), device=dev)
        rows = dy[:, None] + torch.arange(h, device=dev)
        cols = dx[:, None] + torch.arange(w, device=dev)
        x = padded[torch.arange(b, device=dev)[:, None, None], rows[:, :, None], cols[:, None, :]]
    flip = torch.rand(b, device=dev) < 0.5
    x = torch.where(flip[:, None, None], x.flip(-1), x)
    return x


def param_groups(model, weight_decay):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.ndim <= 1 or name.endswith(NO_DECAY_SUFFIXES):
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model, lr, weight_decay, device):
    groups = param_groups(model, weight_decay)
    if device.type == "cuda":
        try:
            return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999), fused=True)
        except (TypeError, RuntimeError):
            pass
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999))


@torch.no_grad()
def evaluate(model, x_u8, y, device, batch=500):
    """float32 inference: (top-1 %, predictions, logits)."""
    was_training = model.training
    model.eval()
    x_u8 = torch.as_tensor(x_u8)
    y = torch.as_tensor(y)
    logits = []
    for i in range(0, x_u8.shape[0], batch):
        logits.append(model(to_input(x_u8[i:i + batch].to(device))).float().cpu())
    model.train(was_training)
    logits = torch.cat(logits)
    pred = logits.argmax(1)
    acc = (pred == y).double().mean().item() * 100.0
    return acc, pred, logits


def save_model(model, key, out_dir, extra):
    cfg = fc.MODELS[key]
    state = {k: (v.detach().float() if v.is_floating_point() else v.detach()).cpu()
             for k, v in model.state_dict().items()}
    meta = {"name": cfg["name"], "family": cfg["family"], "args": json.dumps(cfg["args"], sort_keys=True),
            "input_size": cfg["input_size"], "mean": fc.MEAN, "std": fc.STD,
            "trained_by": "tools/training/train_fashion_mnist.py"}
    meta.update(extra)
    path = out_dir / f"fmnist_{cfg['family']}.safetensors"
    st_io.save_file(state, path, metadata=meta)
    return path


def train_one(key, data, args, device):
    cfg = fc.MODELS[key]
    hp = TRAIN[key]
    train_x, train_y, test_x, test_y = data[cfg["input_size"]]
    test_x, test_y = torch.from_numpy(test_x), torch.from_numpy(test_y)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    model = models.build(cfg["family"], cfg["args"]).to(device)
    n_params = models.count_parameters(model)
    log(key, f"{n_params} parameters ({n_params * 4 / 1e6:.2f} MB f32), input {cfg['input_size']}px, "
             f"{len(train_x)} train / {len(test_x)} test images, device {device}")
    opt = make_optimizer(model, hp["lr"], hp["weight_decay"], device)
    use_amp = device.type == "cuda"
    xs = torch.from_numpy(train_x).to(device)
    ys = torch.from_numpy(train_y).to(device)
    n = xs.shape[0]
    bs = min(args.batch_size or hp["batch_size"], n)
    steps_per_epoch = n // bs
    budget = args.time_budget
    warmup = 0.04

    def progress(step, elapsed):
        return step / args.max_steps if args.max_steps else elapsed / budget

    model.train()
    start = time.time()
    step, epoch = 0, 0
    loss_sum = torch.zeros((), device=device)
    correct_sum = torch.zeros((), device=device)
    seen = 0
    next_report = 0.1
    mid_eval_done = False
    done = False
    while not done:
        perm = torch.randperm(n, device=device)
        for i in range(steps_per_epoch):
            p = progress(step, time.time() - start)
            if p >= 1.0:
                done = True
                break
            lr = hp["lr"] * min(1.0, (p + 1e-9) / warmup) * 0.5 * (1.0 + math.cos(math.pi * p))
            for g in opt.param_groups:
                g["lr"] = lr
            idx = perm[i * bs:(i + 1) * bs]
            xb = to_input(augment(xs[idx], hp["shift"]))
            yb = ys[idx]
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_amp):
                out = model(xb)
            loss = F.cross_entropy(out.float(), yb, label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            loss_sum += loss.detach()
            correct_sum += (out.detach().argmax(1) == yb).sum()
            seen += bs
            if p >= next_report:
                log(key, f"{p * 100:3.0f}%  step {step} epoch {epoch}  lr {lr:.2e}  "
                         f"train loss {loss_sum.item() / max(1, step):.4f}  "
                         f"train acc {correct_sum.item() / max(1, seen) * 100:.2f}%  "
                         f"{time.time() - start:.0f}s")
                next_report += 0.1
            if not mid_eval_done and p >= 0.5 and not args.max_steps:
                acc, _, _ = evaluate(model, test_x, test_y, device)
                save_model(model, key, args.out, {"test_top1": f"{acc:.2f}", "partial": "mid-training"})
                log(key, f"mid-training test accuracy {acc:.2f}%")
                mid_eval_done = True
        epoch += 1 if not done else 0
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.time() - start
    acc, pred, logits = evaluate(model, test_x, test_y, device)
    per_class = [float((pred[test_y == c] == c).double().mean() * 100) for c in range(10)]
    log(key, f"done: {step} steps ({step / steps_per_epoch:.1f} epochs) in {seconds:.0f}s; "
             f"TEST ACCURACY {acc:.2f}% on {len(test_y)} images")
    path = save_model(model, key, args.out, {"test_top1": f"{acc:.2f}"})
    report = {
        "name": cfg["name"], "family": cfg["family"], "args": cfg["args"], "input_size": cfg["input_size"],
        "preprocess": {"input_size": cfg["input_size"], "crop_pct": 1.0, "interpolation": "bicubic",
                       "mean": [fc.MEAN] * 3, "std": [fc.STD] * 3},
        "parameters": n_params, "weights": path.name, "weights_bytes": path.stat().st_size,
        "test_top1": acc, "test_images": int(len(test_y)), "test_correct": int((pred == test_y).sum()),
        "per_class_top1": per_class, "train_steps": step, "train_epochs": step / steps_per_epoch,
        "train_seconds": seconds, "batch_size": bs, "optimizer": {"name": "AdamW", "lr": hp["lr"],
                                                                   "weight_decay": hp["weight_decay"],
                                                                   "shift": hp["shift"], "warmup": warmup,
                                                                   "schedule": "cosine over the time budget",
                                                                   "label_smoothing": 0.1, "clip_grad_norm": 1.0},
        "time_budget_s": budget, "max_steps": args.max_steps, "amp": "bf16 autocast" if use_amp else "none",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__, "seed": args.seed, "train_images": int(n),
        "first_test_logits": logits[:8].tolist(),
    }
    (args.out / f"fmnist_{cfg['family']}.json").write_text(json.dumps(report, indent=1) + "\n")
    return report


def run_parallel(keys, args):
    """One process per model on the same device; data resized once and shared through a file."""
    with tempfile.TemporaryDirectory(prefix="fmnist_") as tmp:
        cache = pathlib.Path(tmp) / "data.npz"
        sizes = sorted({fc.MODELS[k]["input_size"] for k in keys})
        t = time.time()
        data = prepare_data(args.data, sizes, args.train_subset, args.test_subset)
        np.savez(cache, **{f"{k}_{s}": v for s, arrays in data.items()
                           for k, v in zip(("train_x", "train_y", "test_x", "test_y"), arrays)})
        log("main", f"data prepared in {time.time() - t:.1f}s; starting {len(keys)} processes")
        procs = []
        for key in keys:
            cmd = [sys.executable, __file__, "--models", key, "--cache", str(cache), "--out", str(args.out),
                   "--time-budget", str(args.time_budget), "--max-steps", str(args.max_steps), "--batch-size",
                   str(args.batch_size), "--seed", str(args.seed), "--device", args.device]
            # The children share this process's output; every line they print names its model.
            procs.append((key, subprocess.Popen(cmd)))
        failed = [key for key, proc in procs if proc.wait() != 0]
        return failed


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=pathlib.Path, help="folder with the Fashion-MNIST IDX files")
    ap.add_argument("--cache", type=pathlib.Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=pathlib.Path, required=True)
    ap.add_argument("--models", default="vim,vmamba,mambavision")
    ap.add_argument("--parallel", action="store_true", help="one process per model on the same device")
    ap.add_argument("--time-budget", type=float, default=265.0, help="training seconds per model")
    ap.add_argument("--max-steps", type=int, default=0, help="train this many steps instead (smoke tests)")
    ap.add_argument("--batch-size", type=int, default=0, help="override the per-model batch size")
    ap.add_argument("--train-subset", type=int, default=0, help="use the first N training images")
    ap.add_argument("--test-subset", type=int, default=0, help="use the first N test images")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    keys = [k.strip() for k in args.models.split(",") if k.strip()]
    for k in keys:
        if k not in fc.MODELS:
            ap.error(f"--models: unknown model {k!r} (known: {', '.join(fc.MODELS)})")
    if args.data is None and args.cache is None:
        ap.error("--data is required")
    args.out.mkdir(parents=True, exist_ok=True)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        # Training runs in bf16 autocast; float32 evaluation should not use TF32 convolutions
        # (matmuls do not by default), to score what mcv's f32 path computes.
        try:
            torch.backends.cudnn.allow_tf32 = False
        except Exception as e:  # a future torch may drop the legacy flag
            log("main", f"could not turn TF32 convolutions off: {e}")
    log("main", f"torch {torch.__version__}, device {device}"
                + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""))

    if args.parallel and len(keys) > 1:
        failed = run_parallel(keys, args)
    else:
        if args.cache:
            z = np.load(args.cache)
            sizes = {fc.MODELS[k]["input_size"] for k in keys}
            data = {s: tuple(z[f"{k}_{s}"] for k in ("train_x", "train_y", "test_x", "test_y")) for s in sizes}
        else:
            data = prepare_data(args.data, sorted({fc.MODELS[k]["input_size"] for k in keys}), args.train_subset,
                                args.test_subset)
        failed = []
        for key in keys:
            train_one(key, data, args, device)
    summary = {}
    for key in keys:
        f = args.out / f"fmnist_{fc.MODELS[key]['family']}.json"
        if f.is_file():
            r = json.loads(f.read_text())
            summary[key] = {"test_top1": r["test_top1"], "parameters": r["parameters"], "steps": r["train_steps"],
                            "epochs": round(r["train_epochs"], 2), "seconds": round(r["train_seconds"], 1)}
    if len(keys) > 1 or not args.cache:
        log("main", "summary " + json.dumps(summary))
    if failed:
        log("main", f"FAILED: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
