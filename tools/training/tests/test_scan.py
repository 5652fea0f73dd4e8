"""The selective scan of models.py (loop and parallel forms, grouped B/C, gradients) against the
step-by-step reference. Run: /usr/bin/python3 tools/training/tests/test_scan.py"""

import pathlib
import sys

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import models  # noqa: E402


def check(batch, dim, n, length, groups, mode):
    g = torch.Generator().manual_seed(batch * 1000 + length)
    u = torch.randn(batch, dim, length, generator=g, dtype=torch.float64)
    delta = torch.randn(batch, dim, length, generator=g, dtype=torch.float64)
    A = -torch.rand(dim, n, generator=g, dtype=torch.float64) * 4
    shape = (batch, groups, n, length) if groups else (batch, n, length)
    B = torch.randn(*shape, generator=g, dtype=torch.float64)
    C = torch.randn(*shape, generator=g, dtype=torch.float64)
    D = torch.randn(dim, generator=g, dtype=torch.float64)
    z = torch.randn(batch, dim, length, generator=g, dtype=torch.float64)
    bias = torch.randn(dim, generator=g, dtype=torch.float64)
    ref = models.selective_scan_reference(u, delta, A, B, C, D, z, bias, True)
    u.requires_grad_(True)
    out = models.selective_scan(u, delta, A, B, C, D, z, bias, True, mode=mode)
    err = (out - ref).abs().max().item()
    assert err < 1e-10, (mode, batch, dim, n, length, groups, err)
    # Gradients of both forms agree (the parallel form has a different autograd graph).
    out.pow(2).sum().backward()
    grad = u.grad.clone()
    u.grad = None
    other = "loop" if mode == "parallel" else "parallel"
    models.selective_scan(u, delta, A, B, C, D, z, bias, True, mode=other).pow(2).sum().backward()
    gerr = (u.grad - grad).abs().max().item()
    assert gerr < 1e-8 * max(1.0, grad.abs().max().item()), (mode, gerr)
    # float32 stays float32 and is close.
    out32 = models.selective_scan(*(t.float() if t is not None else None
                                    for t in (u.detach(), delta, A, B, C, D, z, bias)), True, mode=mode)
    assert out32.dtype == torch.float32
    rel = ((out32.double() - ref).norm() / ref.norm()).item()
    assert rel < 1e-5, (mode, rel)


def main():
    for mode in ("loop", "parallel"):
        for batch, dim, n, length, groups in [(2, 8, 4, 1, 0), (2, 8, 4, 7, 0), (1, 12, 3, 50, 0),
                                              (2, 16, 1, 33, 4), (1, 8, 2, 64, 4), (1, 4, 16, 130, 0)]:
            check(batch, dim, n, length, groups, mode)
    print("scan tests passed")


if __name__ == "__main__":
    main()
