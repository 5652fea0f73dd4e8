"""Pure-PyTorch Vim, VMamba and MambaVision for training the embedded Fashion-MNIST models.

Each class carries the official module and parameter names and constructor keyword arguments of
  - hustvl/Vim            vim/models_mamba.py `VisionMamba` (+ its vendored mamba_simple `Mamba`,
                          bimamba_type "v2", as the fused fast path computes it),
  - MzeroMiko/VMamba      classification/models/vmamba.py `VSSM` (SS2D "v2" family of forward types),
  - NVlabs/MambaVision    mambavision/models/mamba_vision.py `MambaVision`,
so `state_dict()` is what the official code would save and the C++ loaders read it unchanged.
Only the configuration subset the small models use is implemented; anything else raises
NotImplementedError naming the argument instead of computing something different.

No custom extension is needed: the selective scan is the recurrence of mamba_ssm's
`selective_scan_ref`, run as a loop over the sequence (the sequences here are short).
Runs on torch 1.13 (Debian, CPU) and torch 2.x (CUDA).
"""

import math
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F


# ----------------------------------------------------------------------------------------------
# Shared pieces
# ----------------------------------------------------------------------------------------------

def _up(t):
    """float32 for half/bfloat16 tensors (the official code computes the scan and norms in
    float32); float32/float64 tensors unchanged, so a float64 model stays float64."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


PARALLEL_SCAN_MIN_LENGTH = 128


def _linear_recurrence(decay, drive, mode):
    """h_t = decay_t * h_{t-1} + drive_t along dim 0, h_{-1} = 0; returns every h_t stacked."""
    length = decay.shape[0]
    if mode == "loop":
        # unbind once: indexing step by step would make autograd build a full-size gradient
        # per step.
        decays = decay.unbind(0)
        drives = drive.unbind(0)
        h = torch.zeros_like(decays[0])
        states = []
        for t in range(length):
            h = torch.addcmul(drives[t], decays[t], h)
            states.append(h)
        return torch.stack(states, 0)
    if mode != "parallel":
        raise ValueError(f"scan mode {mode!r}: 'loop' or 'parallel'")
    # Hillis-Steele inclusive scan of the affine maps h -> a h + b: after the step with offset s,
    # (a_t, b_t) composes the maps of positions t-2s+1..t. Products of decays in (0, 1] only, so
    # it is as stable as the loop.
    a, b = decay, drive
    step = 1
    while step < length:
        b = torch.cat([b[:step], torch.addcmul(b[step:], a[step:], b[:-step])], 0)
        if step * 2 < length:
            a = torch.cat([a[:step], a[step:] * a[:-step]], 0)
        step *= 2
    return b


def selective_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, mode=None):
    """Mamba-1 selective scan (the math of mamba_ssm selective_scan_ref).

    u, delta: (batch, dim, L); A: (dim, N); B, C: (batch, N, L) or grouped (batch, G, N, L),
    channel d using group d // (dim // G); D: (dim,); z: (batch, dim, L); delta_bias: (dim,).
      dt_t = softplus(delta_t + delta_bias)            (softplus optional)
      h_t  = exp(dt_t * A) * h_{t-1} + dt_t * B_t * u_t
      y_t  = <C_t, h_t> + D * u_t ;  out = y * silu(z)
    Computed in float32 (float64 for float64 inputs); returns the input dtype. `mode` picks how
    the recurrence runs: "loop" (one step per position), "parallel" (log-depth prefix scan, fewer
    kernel launches for long sequences), None = parallel from PARALLEL_SCAN_MIN_LENGTH on.
    """
    dtype_in = u.dtype
    u = _up(u)
    delta = _up(delta)
    if delta_bias is not None:
        delta = delta + _up(delta_bias[..., None])
    if delta_softplus:
        delta = F.softplus(delta)
    batch, dim, length = u.shape
    n = A.shape[1]
    if B.dim() == 3:
        B = B.unsqueeze(1)
    if C.dim() == 3:
        C = C.unsqueeze(1)
    groups = B.shape[1]
    per = dim // groups
    # Sequence-major layout, so each step of the recurrence reads one contiguous slab.
    u_g = u.view(batch, groups, per, length).permute(3, 0, 1, 2)          # (L, b, g, p)
    dt_g = delta.view(batch, groups, per, length).permute(3, 0, 1, 2)     # (L, b, g, p)
    A_g = _up(A).view(groups, per, n)                                  # (g, p, n)
    B_g = _up(B).permute(3, 0, 1, 2).unsqueeze(3)                      # (L, b, g, 1, n)
    C_g = _up(C).permute(3, 0, 1, 2).unsqueeze(3)                      # (L, b, g, 1, n)
    decay = torch.exp(dt_g.unsqueeze(-1) * A_g)                           # (L, b, g, p, n)
    drive = (dt_g * u_g).unsqueeze(-1) * B_g                              # (L, b, g, p, n)
    if mode is None:
        mode = "parallel" if length >= PARALLEL_SCAN_MIN_LENGTH else "loop"
    states = _linear_recurrence(decay, drive, mode)
    y = (states * C_g).sum(-1)                                            # (L, b, g, p)
    y = y.permute(1, 2, 3, 0).reshape(batch, dim, length)
    if D is not None:
        y = y + u * _up(D)[:, None]
    if z is not None:
        y = y * F.silu(_up(z))
    return y.to(dtype_in)


def selective_scan_reference(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False):
    """The same function written step by step like selective_scan_ref (for tests only)."""
    dtype_in = u.dtype
    u = u.double()
    delta = delta.double()
    if delta_bias is not None:
        delta = delta + delta_bias[..., None].double()
    if delta_softplus:
        delta = F.softplus(delta)
    dim = A.shape[0]
    if B.dim() == 3:
        B = B.unsqueeze(1)
    if C.dim() == 3:
        C = C.unsqueeze(1)
    B = B.double().repeat_interleave(dim // B.shape[1], dim=1)   # (b, d, n, l)
    C = C.double().repeat_interleave(dim // C.shape[1], dim=1)
    A = A.double()
    h = torch.zeros(u.shape[0], dim, A.shape[1], dtype=torch.float64)
    ys = []
    for i in range(u.shape[2]):
        h = torch.exp(delta[:, :, i, None] * A) * h + (delta[:, :, i] * u[:, :, i])[..., None] * B[:, :, :, i]
        ys.append((h * C[:, :, :, i]).sum(-1))
    y = torch.stack(ys, dim=2)
    if D is not None:
        y = y + u * D.double()[:, None]
    if z is not None:
        y = y * F.silu(z.double())
    return y.to(dtype_in)


class DropPath(nn.Module):
    """Stochastic depth per sample (timm DropPath); identity in eval mode."""

    def __init__(self, drop_prob=0.0):
        super().__init__()
        self.drop_prob = float(drop_prob)

    def forward(self, x):
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.drop_prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep


def _trunc_normal_(t, std=0.02):
    nn.init.trunc_normal_(t, std=std, a=-2.0, b=2.0)


def _inverse_softplus_dt(size, dt_min=0.001, dt_max=0.1, dt_init_floor=1e-4):
    """dt bias so that softplus(bias) is log-uniform in [dt_min, dt_max] (Mamba's dt init)."""
    dt = torch.exp(torch.rand(size) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
    dt = dt.clamp(min=dt_init_floor)
    return dt + torch.log(-torch.expm1(-dt))


def _s4d_real_log(d_inner, d_state):
    return torch.log(torch.arange(1, d_state + 1, dtype=torch.float32).repeat(d_inner, 1))


def _reject(name, value, supported):
    raise NotImplementedError(f"argument {name}={value!r} is not supported here (supported: {supported})")


# ----------------------------------------------------------------------------------------------
# Vim (hustvl/Vim vim/models_mamba.py + mamba-1p1p1 mamba_simple.py, bimamba_type "v2")
# ----------------------------------------------------------------------------------------------

class RMSNorm(nn.Module):
    """mamba_ssm.ops.triton.layernorm.RMSNorm: weight only (its bias is registered as None)."""

    def __init__(self, hidden_size, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.register_parameter("bias", None)

    def forward(self, x):
        xf = _up(x)
        out = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps) * _up(self.weight)
        return out.to(x.dtype)


class VimPatchEmbed(nn.Module):
    """models_mamba.PatchEmbed: conv patchify (kernel patch_size, stride `stride`), flatten."""

    def __init__(self, img_size=224, patch_size=16, stride=16, in_chans=3, embed_dim=768):
        super().__init__()
        self.img_size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        self.patch_size = (patch_size, patch_size) if isinstance(patch_size, int) else tuple(patch_size)
        self.grid_size = ((self.img_size[0] - self.patch_size[0]) // stride + 1,
                          (self.img_size[1] - self.patch_size[1]) // stride + 1)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=self.patch_size, stride=stride)
        self.norm = nn.Identity()

    def forward(self, x):
        if tuple(x.shape[2:]) != self.img_size:
            raise ValueError(f"input size {tuple(x.shape[2:])} does not match the model {self.img_size}")
        return self.norm(self.proj(x).flatten(2).transpose(1, 2))


class Mamba(nn.Module):
    """mamba_simple.Mamba with bimamba_type "v2": shared in_proj/out_proj, a forward branch
    (conv1d, x_proj, dt_proj, A_log, D) and a backward branch (conv1d_b, x_proj_b, dt_proj_b,
    A_b_log, D_b) run on the flipped sequence, as mamba_inner_fn_no_out_proj computes them:
      out = out_proj((y_f + flip(y_b)) [/ 2]) [* gamma]."""

    def __init__(self, d_model, d_state=16, d_conv=4, expand=2, dt_rank="auto", dt_min=0.001, dt_max=0.1,
                 dt_init="random", dt_scale=1.0, dt_init_floor=1e-4, conv_bias=True, bias=False,
                 use_fast_path=True, layer_idx=None, device=None, dtype=None, bimamba_type="none",
                 if_divide_out=False, init_layer_scale=None):
        super().__init__()
        if bimamba_type != "v2":
            _reject("bimamba_type", bimamba_type, '"v2"')
        if not use_fast_path:
            _reject("use_fast_path", use_fast_path, "True (the slow path drops the backward branch)")
        self.d_model = d_model
        self.d_state = d_state
        self.d_conv = d_conv
        self.d_inner = int(expand * d_model)
        self.dt_rank = math.ceil(d_model / 16) if dt_rank == "auto" else dt_rank
        self.layer_idx = layer_idx
        self.if_divide_out = if_divide_out
        self.init_layer_scale = init_layer_scale
        if init_layer_scale is not None:
            self.gamma = nn.Parameter(init_layer_scale * torch.ones(d_model))
        di = self.d_inner
        self.in_proj = nn.Linear(d_model, di * 2, bias=bias)
        self.conv1d = nn.Conv1d(di, di, kernel_size=d_conv, groups=di, padding=d_conv - 1, bias=conv_bias)
        self.act = nn.SiLU()
        self.x_proj = nn.Linear(di, self.dt_rank + d_state * 2, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, di, bias=True)
        self.A_log = nn.Parameter(_s4d_real_log(di, d_state))
        self.D = nn.Parameter(torch.ones(di))
        self.A_b_log = nn.Parameter(_s4d_real_log(di, d_state))
        self.conv1d_b = nn.Conv1d(di, di, kernel_size=d_conv, groups=di, padding=d_conv - 1, bias=conv_bias)
        self.x_proj_b = nn.Linear(di, self.dt_rank + d_state * 2, bias=False)
        self.dt_proj_b = nn.Linear(self.dt_rank, di, bias=True)
        self.D_b = nn.Parameter(torch.ones(di))
        self.out_proj = nn.Linear(di, d_model, bias=bias)
        std = self.dt_rank ** -0.5 * dt_scale
        with torch.no_grad():
            for proj in (self.dt_proj, self.dt_proj_b):
                if dt_init == "constant":
                    nn.init.constant_(proj.weight, std)
                else:
                    nn.init.uniform_(proj.weight, -std, std)
                proj.bias.copy_(_inverse_softplus_dt(di, dt_min, dt_max, dt_init_floor))
                proj.bias._no_reinit = True

    def _branch(self, xz, conv, x_proj, dt_proj, A_log, D):
        # mamba_inner_fn_no_out_proj: causal depthwise conv + SiLU, x_proj, dt_proj (no bias),
        # then the z-gated scan with dt_proj.bias as delta_bias.
        length = xz.shape[-1]
        x, z = xz.chunk(2, dim=1)
        x = F.silu(conv(x)[..., :length])
        x_dbl = F.linear(x.transpose(1, 2), x_proj.weight)                  # (b, l, r + 2n)
        dt, Bm, Cm = torch.split(x_dbl, [self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = F.linear(dt, dt_proj.weight).transpose(1, 2)                 # (b, d, l)
        A = -torch.exp(_up(A_log))
        return selective_scan(x, delta, A, Bm.transpose(1, 2), Cm.transpose(1, 2), _up(D), z=z,
                              delta_bias=_up(dt_proj.bias), delta_softplus=True)

    def forward(self, hidden_states, inference_params=None):
        xz = self.in_proj(hidden_states).transpose(1, 2)                      # (b, 2 d_inner, l)
        out = self._branch(xz, self.conv1d, self.x_proj, self.dt_proj, self.A_log, self.D)
        out_b = self._branch(xz.flip([-1]), self.conv1d_b, self.x_proj_b, self.dt_proj_b, self.A_b_log, self.D_b)
        y = (out + out_b.flip([-1])).transpose(1, 2)
        if self.if_divide_out:
            y = y / 2
        out = self.out_proj(y)
        if self.init_layer_scale is not None:
            out = out * self.gamma
        return out


class VimBlock(nn.Module):
    """models_mamba.Block: Add -> Norm -> Mixer, returning (mixer output, residual). The fused
    add+norm of the official code computes the same function as the unfused path."""

    def __init__(self, dim, mixer, norm, residual_in_fp32=False, drop_path=0.0):
        super().__init__()
        self.residual_in_fp32 = residual_in_fp32
        self.mixer = mixer
        self.norm = norm
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()

    def forward(self, hidden_states, residual=None):
        residual = hidden_states if residual is None else residual + self.drop_path(hidden_states)
        hidden_states = self.norm(residual.to(dtype=self.norm.weight.dtype))
        if self.residual_in_fp32:
            residual = residual.to(torch.float32)
        return self.mixer(hidden_states), residual


class VisionMamba(nn.Module):
    def __init__(self, img_size=224, patch_size=16, stride=16, depth=24, embed_dim=192, d_state=16, channels=3,
                 num_classes=1000, ssm_cfg=None, drop_rate=0.0, drop_path_rate=0.1, norm_epsilon=1e-5,
                 rms_norm=True, initializer_cfg=None, fused_add_norm=True, residual_in_fp32=True, device=None,
                 dtype=None, ft_seq_len=None, pt_hw_seq_len=14, if_bidirectional=False, final_pool_type="none",
                 if_abs_pos_embed=True, if_rope=False, if_rope_residual=False, flip_img_sequences_ratio=-1.0,
                 if_bimamba=False, bimamba_type="v2", if_cls_token=True, if_divide_out=True, init_layer_scale=None,
                 use_double_cls_token=False, use_middle_cls_token=True, **kwargs):
        super().__init__()
        if if_bidirectional:
            _reject("if_bidirectional", if_bidirectional, "False")
        if if_rope:
            _reject("if_rope", if_rope, "False")
        if if_bimamba:
            _reject("if_bimamba", if_bimamba, "False")
        if use_double_cls_token:
            _reject("use_double_cls_token", use_double_cls_token, "False")
        if not if_cls_token:
            _reject("if_cls_token", if_cls_token, "True")
        if flip_img_sequences_ratio > 0:
            _reject("flip_img_sequences_ratio", flip_img_sequences_ratio, "<= 0")
        self.residual_in_fp32 = residual_in_fp32
        self.fused_add_norm = fused_add_norm
        self.final_pool_type = final_pool_type
        self.if_abs_pos_embed = if_abs_pos_embed
        self.if_cls_token = if_cls_token
        self.use_middle_cls_token = use_middle_cls_token
        self.num_tokens = 1
        self.num_classes = num_classes
        self.d_model = self.num_features = self.embed_dim = embed_dim

        self.patch_embed = VimPatchEmbed(img_size=img_size, patch_size=patch_size, stride=stride, in_chans=channels,
                                         embed_dim=embed_dim)
        num_patches = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        if if_abs_pos_embed:
            self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + self.num_tokens, embed_dim))
            self.pos_drop = nn.Dropout(p=drop_rate)
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

        dpr = [x.item() for x in torch.linspace(0, drop_path_rate, depth)]
        inter_dpr = [0.0] + dpr
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0.0 else nn.Identity()
        ssm_cfg = dict(ssm_cfg or {})

        def norm_cls(dim):
            return RMSNorm(dim, eps=norm_epsilon) if rms_norm else nn.LayerNorm(dim, eps=norm_epsilon)

        self.layers = nn.ModuleList([
            VimBlock(embed_dim,
                     Mamba(embed_dim, d_state=d_state, layer_idx=i, bimamba_type=bimamba_type,
                           if_divide_out=if_divide_out, init_layer_scale=init_layer_scale, **ssm_cfg),
                     norm_cls(embed_dim), residual_in_fp32=residual_in_fp32, drop_path=inter_dpr[i])
            for i in range(depth)
        ])
        self.norm_f = norm_cls(embed_dim)

        # The official initialisation: lecun-normal patch conv, truncated-normal head, position
        # embedding and class token, zero Linear biases (except dt), out_proj scaled by 1/sqrt(depth).
        with torch.no_grad():
            fan_in = self.patch_embed.proj.weight[0].numel()
            _trunc_normal_(self.patch_embed.proj.weight, std=math.sqrt(1.0 / fan_in) / 0.87962566103423978)
            nn.init.zeros_(self.patch_embed.proj.bias)
            if isinstance(self.head, nn.Linear):
                _trunc_normal_(self.head.weight, std=0.02)
                nn.init.zeros_(self.head.bias)
            if if_abs_pos_embed:
                _trunc_normal_(self.pos_embed, std=0.02)
            _trunc_normal_(self.cls_token, std=0.02)
            for m in self.modules():
                if isinstance(m, nn.Linear) and m.bias is not None and not getattr(m.bias, "_no_reinit", False):
                    nn.init.zeros_(m.bias)
            for name, p in self.named_parameters():
                if name.endswith("out_proj.weight"):
                    nn.init.kaiming_uniform_(p, a=math.sqrt(5))
                    p /= math.sqrt(depth)

    def forward_features(self, x):
        x = self.patch_embed(x)
        batch, m, _ = x.shape
        cls_token = self.cls_token.expand(batch, -1, -1)
        if self.use_middle_cls_token:
            token_position = m // 2
            x = torch.cat((x[:, :token_position, :], cls_token, x[:, token_position:, :]), dim=1)
        else:
            token_position = 0
            x = torch.cat((cls_token, x), dim=1)
        if self.if_abs_pos_embed:
            x = self.pos_drop(x + self.pos_embed)
        residual = None
        hidden_states = x
        for layer in self.layers:
            hidden_states, residual = layer(hidden_states, residual)
        residual = residual + self.drop_path(hidden_states)
        hidden_states = self.norm_f(residual.to(dtype=self.norm_f.weight.dtype))
        return hidden_states[:, token_position, :]

    def forward(self, x):
        return self.head(self.forward_features(x))


# ----------------------------------------------------------------------------------------------
# VMamba (MzeroMiko/VMamba classification/models/vmamba.py, VSSM with SS2D v2 forward types)
# ----------------------------------------------------------------------------------------------

class Linear2d(nn.Linear):
    """1x1 convolution over (B, C, H, W) whose weight keeps the nn.Linear shape (out, in)."""

    def forward(self, x):
        return F.conv2d(x, self.weight[:, :, None, None], self.bias)


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of a (B, C, H, W) tensor."""

    def forward(self, x):
        x = F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class Permute(nn.Module):
    def __init__(self, *args):
        super().__init__()
        self.args = args

    def forward(self, x):
        return x.permute(*self.args)


class VMambaMlp(nn.Module):
    """vmamba.Mlp: fc1 -> act -> fc2 (Linear2d when channel-first)."""

    def __init__(self, in_features, hidden_features=None, out_features=None, act_layer=nn.GELU, drop=0.0,
                 channels_first=False):
        super().__init__()
        out_features = out_features or in_features
        hidden_features = hidden_features or in_features
        linear = Linear2d if channels_first else nn.Linear
        self.fc1 = linear(in_features, hidden_features)
        self.act = act_layer()
        self.fc2 = linear(hidden_features, out_features)
        self.drop = nn.Dropout(drop)

    def forward(self, x):
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


def cross_scan(x):
    """(B, C, H, W) -> (B, 4, C, H*W): row-major, column-major, and both reversed."""
    b, c, h, w = x.shape
    xs0 = x.flatten(2)
    xs1 = x.transpose(2, 3).flatten(2)
    return torch.stack([xs0, xs1, xs0.flip(-1), xs1.flip(-1)], dim=1)


def cross_merge(ys, h, w):
    """(B, 4, C, L) -> (B, C, H*W): each direction mapped back to its grid position and summed."""
    b, k, c, length = ys.shape
    y = ys[:, 0:2] + ys[:, 2:4].flip(-1)
    return y[:, 0] + y[:, 1].view(b, c, w, h).transpose(2, 3).reshape(b, c, length)


class SS2D(nn.Module):
    """SS2D with the v2 family of forward types (SS2Dv2.__initv2__ / forwardv2 / forward_corev2):
    in_proj, depthwise conv + activation, four-direction cross scan with per-direction x_proj /
    dt_proj / A / D, cross merge, out_norm, optional z gate, out_proj."""

    _CROSS2D = ("v01", "v02", "v03", "v04", "v05", "v2", "v3")

    def __init__(self, d_model=96, d_state=16, ssm_ratio=2.0, dt_rank="auto", act_layer=nn.SiLU, d_conv=3,
                 conv_bias=True, dropout=0.0, bias=False, dt_min=0.001, dt_max=0.1, dt_init="random",
                 dt_scale=1.0, dt_init_floor=1e-4, initialize="v0", forward_type="v2", channel_first=False,
                 **kwargs):
        super().__init__()
        base = forward_type
        for tag in ("_no32",):
            if base.endswith(tag):
                base = base[:-len(tag)]
        self.disable_z = base.endswith("_noz")
        if self.disable_z:
            base = base[:-len("_noz")]
        if base not in self._CROSS2D:
            _reject("forward_type", forward_type, "v01-v05, v2, v3 with optional _noz/_no32")
        if initialize != "v0":
            _reject("ssm_init", initialize, '"v0"')
        self.k_group = 4
        self.d_model = int(d_model)
        self.d_state = int(d_state)
        self.d_inner = int(ssm_ratio * d_model)
        self.dt_rank = int(math.ceil(self.d_model / 16) if dt_rank == "auto" else dt_rank)
        self.channel_first = channel_first
        self.with_dconv = d_conv > 1
        linear = Linear2d if channel_first else nn.Linear
        di, k = self.d_inner, self.k_group

        self.out_norm = LayerNorm2d(di) if channel_first else nn.LayerNorm(di)
        self.in_proj = linear(self.d_model, di if self.disable_z else di * 2, bias=bias)
        self.act = act_layer()
        if self.with_dconv:
            self.conv2d = nn.Conv2d(di, di, groups=di, bias=conv_bias, kernel_size=d_conv, padding=(d_conv - 1) // 2)
        x_proj = [nn.Linear(di, self.dt_rank + self.d_state * 2, bias=False) for _ in range(k)]
        self.x_proj_weight = nn.Parameter(torch.stack([t.weight for t in x_proj], dim=0))   # (K, R + 2N, Di)
        self.out_act = nn.Identity()
        self.out_proj = linear(di, self.d_model, bias=bias)
        self.dropout = nn.Dropout(dropout) if dropout > 0.0 else nn.Identity()
        std = self.dt_rank ** -0.5 * dt_scale
        w = torch.empty(k, di, self.dt_rank)
        if dt_init == "constant":
            nn.init.constant_(w, std)
        else:
            nn.init.uniform_(w, -std, std)
        self.dt_projs_weight = nn.Parameter(w)                                                  # (K, Di, R)
        self.dt_projs_bias = nn.Parameter(
            torch.stack([_inverse_softplus_dt(di, dt_min, dt_max, dt_init_floor) for _ in range(k)]))  # (K, Di)
        self.A_logs = nn.Parameter(_s4d_real_log(di, self.d_state).repeat(k, 1))               # (K * Di, N)
        self.Ds = nn.Parameter(torch.ones(k * di))                                             # (K * Di)

    def forward_core(self, x):
        b, d, h, w = x.shape
        n, k, r = self.d_state, self.k_group, self.dt_rank
        length = h * w
        xs = cross_scan(x)                                                                     # (b, k, d, l)
        x_dbl = F.conv1d(xs.reshape(b, -1, length), self.x_proj_weight.view(-1, d, 1), groups=k)
        dts, Bs, Cs = torch.split(x_dbl.view(b, k, -1, length), [r, n, n], dim=2)
        dts = F.conv1d(dts.reshape(b, -1, length), self.dt_projs_weight.view(k * d, -1, 1), groups=k)
        ys = selective_scan(xs.reshape(b, -1, length), dts, -torch.exp(_up(self.A_logs)), Bs, Cs,
                            _up(self.Ds), delta_bias=_up(self.dt_projs_bias.view(-1)), delta_softplus=True)
        y = cross_merge(ys.view(b, k, d, length), h, w).view(b, d, h, w)
        if not self.channel_first:
            y = y.permute(0, 2, 3, 1)
        return self.out_norm(y.to(x.dtype))

    def forward(self, x):
        x = self.in_proj(x)
        z = None
        if not self.disable_z:
            x, z = x.chunk(2, dim=(1 if self.channel_first else -1))
            z = self.act(z)
        if not self.channel_first:
            x = x.permute(0, 3, 1, 2).contiguous()
        if self.with_dconv:
            x = self.conv2d(x)
        x = self.act(x)
        y = self.out_act(self.forward_core(x))
        if z is not None:
            y = y * z
        return self.dropout(self.out_proj(y))


class VSSBlock(nn.Module):
    def __init__(self, hidden_dim=0, drop_path=0.0, norm_layer=nn.LayerNorm, channel_first=False, ssm_d_state=16,
                 ssm_ratio=2.0, ssm_dt_rank="auto", ssm_act_layer=nn.SiLU, ssm_conv=3, ssm_conv_bias=True,
                 ssm_drop_rate=0.0, ssm_init="v0", forward_type="v2", mlp_ratio=4.0, mlp_act_layer=nn.GELU,
                 mlp_drop_rate=0.0, gmlp=False, use_checkpoint=False, post_norm=False, **kwargs):
        super().__init__()
        if gmlp:
            _reject("gmlp", gmlp, "False")
        self.ssm_branch = ssm_ratio > 0
        self.mlp_branch = mlp_ratio > 0
        if self.ssm_branch:
            self.norm = norm_layer(hidden_dim)
            self.op = SS2D(d_model=hidden_dim, d_state=ssm_d_state, ssm_ratio=ssm_ratio, dt_rank=ssm_dt_rank,
                           act_layer=ssm_act_layer, d_conv=ssm_conv, conv_bias=ssm_conv_bias, dropout=ssm_drop_rate,
                           initialize=ssm_init, forward_type=forward_type, channel_first=channel_first)
        self.drop_path = DropPath(drop_path)
        if self.mlp_branch:
            self.norm2 = norm_layer(hidden_dim)
            self.mlp = VMambaMlp(in_features=hidden_dim, hidden_features=int(hidden_dim * mlp_ratio),
                                 act_layer=mlp_act_layer, drop=mlp_drop_rate, channels_first=channel_first)

    def forward(self, x):
        if self.ssm_branch:
            x = x + self.drop_path(self.op(self.norm(x)))
        if self.mlp_branch:
            x = x + self.drop_path(self.mlp(self.norm2(x)))
        return x


class PatchMerging2D(nn.Module):
    """Downsample v1: 2x2 neighbourhood gather (x0, x1, x2, x3 order), norm, linear reduction."""

    def __init__(self, dim, out_dim=-1, norm_layer=nn.LayerNorm, channel_first=False):
        super().__init__()
        if channel_first:
            _reject("downsample_version", "v1", "v1 only with channel-last norms")
        self.dim = dim
        self.reduction = nn.Linear(4 * dim, (2 * dim) if out_dim < 0 else out_dim, bias=False)
        self.norm = norm_layer(4 * dim)

    def forward(self, x):
        h, w = x.shape[1:3]
        if h % 2 or w % 2:
            x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        return self.reduction(self.norm(x))


class VSSM(nn.Module):
    def __init__(self, patch_size=4, in_chans=3, num_classes=1000, depths=(2, 2, 9, 2), dims=(96, 192, 384, 768),
                 ssm_d_state=16, ssm_ratio=2.0, ssm_dt_rank="auto", ssm_act_layer="silu", ssm_conv=3,
                 ssm_conv_bias=True, ssm_drop_rate=0.0, ssm_init="v0", forward_type="v2", mlp_ratio=4.0,
                 mlp_act_layer="gelu", mlp_drop_rate=0.0, gmlp=False, drop_path_rate=0.1, patch_norm=True,
                 norm_layer="LN", downsample_version="v2", patchembed_version="v1", use_checkpoint=False,
                 posembed=False, imgsize=224, **kwargs):
        super().__init__()
        if posembed:
            _reject("posembed", posembed, "False")
        self.channel_first = norm_layer.lower() in ("bn", "ln2d")
        depths = list(depths)
        self.num_layers = len(depths)
        if isinstance(dims, int):
            dims = [int(dims * 2 ** i) for i in range(self.num_layers)]
        self.num_features = dims[-1]
        self.dims = dims
        dpr = [x.item() for x in torch.linspace(0, drop_path_rate, sum(depths))]
        norms = dict(ln=nn.LayerNorm, ln2d=LayerNorm2d)
        acts = dict(silu=nn.SiLU, gelu=nn.GELU, relu=nn.ReLU, sigmoid=nn.Sigmoid)
        if norm_layer.lower() not in norms:
            _reject("norm_layer", norm_layer, "ln, ln2d")
        norm = norms[norm_layer.lower()]
        ssm_act = acts[ssm_act_layer.lower()]
        mlp_act = acts[mlp_act_layer.lower()]
        cf = self.channel_first
        self.pos_embed = None

        if patchembed_version == "v1":
            self.patch_embed = nn.Sequential(
                nn.Conv2d(in_chans, dims[0], kernel_size=patch_size, stride=patch_size, bias=True),
                nn.Identity() if cf else Permute(0, 2, 3, 1),
                norm(dims[0]) if patch_norm else nn.Identity())
        elif patchembed_version == "v2":
            stride = patch_size // 2
            ks = stride + 1
            half = dims[0] // 2
            self.patch_embed = nn.Sequential(
                nn.Conv2d(in_chans, half, kernel_size=ks, stride=stride, padding=1),
                nn.Identity() if (cf or not patch_norm) else Permute(0, 2, 3, 1),
                norm(half) if patch_norm else nn.Identity(),
                nn.Identity() if (cf or not patch_norm) else Permute(0, 3, 1, 2),
                nn.GELU(),
                nn.Conv2d(half, dims[0], kernel_size=ks, stride=stride, padding=1),
                nn.Identity() if cf else Permute(0, 2, 3, 1),
                norm(dims[0]) if patch_norm else nn.Identity())
        else:
            _reject("patchembed_version", patchembed_version, "v1, v2")

        def make_downsample(dim, out_dim):
            if downsample_version == "v1":
                return PatchMerging2D(dim, out_dim, norm_layer=norm, channel_first=cf)
            if downsample_version in ("v2", "v3"):
                conv = (nn.Conv2d(dim, out_dim, kernel_size=2, stride=2) if downsample_version == "v2"
                        else nn.Conv2d(dim, out_dim, kernel_size=3, stride=2, padding=1))
                return nn.Sequential(nn.Identity() if cf else Permute(0, 3, 1, 2), conv,
                                     nn.Identity() if cf else Permute(0, 2, 3, 1), norm(out_dim))
            _reject("downsample_version", downsample_version, "v1, v2, v3")

        self.layers = nn.ModuleList()
        for i in range(self.num_layers):
            downsample = make_downsample(dims[i], dims[i + 1]) if i < self.num_layers - 1 else nn.Identity()
            blocks = [VSSBlock(hidden_dim=dims[i], drop_path=dpr[sum(depths[:i]) + d], norm_layer=norm,
                               channel_first=cf, ssm_d_state=ssm_d_state, ssm_ratio=ssm_ratio, ssm_dt_rank=ssm_dt_rank,
                               ssm_act_layer=ssm_act, ssm_conv=ssm_conv, ssm_conv_bias=ssm_conv_bias,
                               ssm_drop_rate=ssm_drop_rate, ssm_init=ssm_init, forward_type=forward_type,
                               mlp_ratio=mlp_ratio, mlp_act_layer=mlp_act, mlp_drop_rate=mlp_drop_rate, gmlp=gmlp)
                      for d in range(depths[i])]
            self.layers.append(nn.Sequential(OrderedDict(blocks=nn.Sequential(*blocks), downsample=downsample)))

        self.classifier = nn.Sequential(OrderedDict(
            norm=norm(self.num_features),
            permute=(Permute(0, 3, 1, 2) if not cf else nn.Identity()),
            avgpool=nn.AdaptiveAvgPool2d(1),
            flatten=nn.Flatten(1),
            head=nn.Linear(self.num_features, num_classes)))

        # VSSM._init_weights: truncated-normal Linear weights (std .02), zero biases, unit norms.
        for m in self.modules():
            if isinstance(m, nn.Linear):
                _trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.patch_embed(x)
        for layer in self.layers:
            x = layer(x)
        return self.classifier(x)


# ----------------------------------------------------------------------------------------------
# MambaVision (NVlabs/MambaVision mambavision/models/mamba_vision.py)
# ----------------------------------------------------------------------------------------------

def window_partition(x, window_size):
    """(B, C, H, W) -> (B * windows, window_size^2, C), windows in row-major order."""
    b, c, h, w = x.shape
    x = x.view(b, c, h // window_size, window_size, w // window_size, window_size)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(-1, window_size * window_size, c)


def window_reverse(windows, window_size, h, w):
    b = int(windows.shape[0] / (h * w / window_size / window_size))
    x = windows.reshape(b, h // window_size, w // window_size, window_size, window_size, -1)
    return x.permute(0, 5, 1, 3, 2, 4).reshape(b, windows.shape[2], h, w)


class Downsample(nn.Module):
    def __init__(self, dim, keep_dim=False):
        super().__init__()
        dim_out = dim if keep_dim else 2 * dim
        self.reduction = nn.Sequential(nn.Conv2d(dim, dim_out, 3, 2, 1, bias=False))

    def forward(self, x):
        return self.reduction(x)


class PatchEmbed(nn.Module):
    """MambaVision stem: two stride-2 3x3 convs, each with BatchNorm (eps 1e-4) and ReLU."""

    def __init__(self, in_chans=3, in_dim=64, dim=96):
        super().__init__()
        self.proj = nn.Identity()
        self.conv_down = nn.Sequential(
            nn.Conv2d(in_chans, in_dim, 3, 2, 1, bias=False), nn.BatchNorm2d(in_dim, eps=1e-4), nn.ReLU(),
            nn.Conv2d(in_dim, dim, 3, 2, 1, bias=False), nn.BatchNorm2d(dim, eps=1e-4), nn.ReLU())

    def forward(self, x):
        return self.conv_down(self.proj(x))


class ConvBlock(nn.Module):
    def __init__(self, dim, drop_path=0.0, layer_scale=None, kernel_size=3):
        super().__init__()
        self.conv1 = nn.Conv2d(dim, dim, kernel_size=kernel_size, stride=1, padding=1)
        self.norm1 = nn.BatchNorm2d(dim, eps=1e-5)
        self.act1 = nn.GELU(approximate="tanh")
        self.conv2 = nn.Conv2d(dim, dim, kernel_size=kernel_size, stride=1, padding=1)
        self.norm2 = nn.BatchNorm2d(dim, eps=1e-5)
        self.layer_scale = layer_scale is not None and type(layer_scale) in (int, float)
        if self.layer_scale:
            self.gamma = nn.Parameter(layer_scale * torch.ones(dim))
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()

    def forward(self, x):
        y = self.norm2(self.conv2(self.act1(self.norm1(self.conv1(x)))))
        if self.layer_scale:
            y = y * self.gamma.view(1, -1, 1, 1)
        return x + self.drop_path(y)


class MambaVisionMixer(nn.Module):
    """Selective-scan half (conv1d_x, x_proj, dt_proj, A_log, D) and a symmetric non-SSM half
    (conv1d_z), concatenated before out_proj. As in the official code the depthwise convs have no
    bias (`bias=conv_bias//2`) and dt_proj's bias is added twice (by dt_proj and as delta_bias)."""

    def __init__(self, d_model, d_state=16, d_conv=4, expand=2, dt_rank="auto", dt_min=0.001, dt_max=0.1,
                 dt_init="random", dt_scale=1.0, dt_init_floor=1e-4, conv_bias=True, bias=False, use_fast_path=True,
                 layer_idx=None, device=None, dtype=None):
        super().__init__()
        self.d_model = d_model
        self.d_state = d_state
        self.d_conv = d_conv
        self.d_inner = int(expand * d_model)
        self.dt_rank = math.ceil(d_model / 16) if dt_rank == "auto" else dt_rank
        half = self.d_inner // 2
        self.in_proj = nn.Linear(d_model, self.d_inner, bias=bias)
        self.x_proj = nn.Linear(half, self.dt_rank + d_state * 2, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, half, bias=True)
        std = self.dt_rank ** -0.5 * dt_scale
        with torch.no_grad():
            if dt_init == "constant":
                nn.init.constant_(self.dt_proj.weight, std)
            else:
                nn.init.uniform_(self.dt_proj.weight, -std, std)
            self.dt_proj.bias.copy_(_inverse_softplus_dt(half, dt_min, dt_max, dt_init_floor))
        self.A_log = nn.Parameter(_s4d_real_log(half, d_state))
        self.D = nn.Parameter(torch.ones(half))
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=bias)
        self.conv1d_x = nn.Conv1d(half, half, bias=bool(conv_bias // 2), kernel_size=d_conv, groups=half)
        self.conv1d_z = nn.Conv1d(half, half, bias=bool(conv_bias // 2), kernel_size=d_conv, groups=half)

    def forward(self, hidden_states):
        half = self.d_inner // 2
        x, z = self.in_proj(hidden_states).transpose(1, 2).chunk(2, dim=1)
        x = F.silu(F.conv1d(x, self.conv1d_x.weight, self.conv1d_x.bias, padding="same", groups=half))
        z = F.silu(F.conv1d(z, self.conv1d_z.weight, self.conv1d_z.bias, padding="same", groups=half))
        x_dbl = self.x_proj(x.transpose(1, 2))                                      # (b, l, r + 2n)
        dt, Bm, Cm = torch.split(x_dbl, [self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = self.dt_proj(dt).transpose(1, 2)                                        # bias included
        y = selective_scan(x, dt, -torch.exp(_up(self.A_log)), Bm.transpose(1, 2), Cm.transpose(1, 2),
                           _up(self.D), z=None, delta_bias=_up(self.dt_proj.bias), delta_softplus=True)
        y = torch.cat([y.to(z.dtype), z], dim=1).transpose(1, 2)
        return self.out_proj(y)


class Attention(nn.Module):
    def __init__(self, dim, num_heads=8, qkv_bias=False, qk_norm=False, attn_drop=0.0, proj_drop=0.0,
                 norm_layer=nn.LayerNorm):
        super().__init__()
        if qk_norm:
            _reject("qk_scale", qk_norm, "None/False")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.q_norm = nn.Identity()
        self.k_norm = nn.Identity()
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        # The official fused_attn path (F.scaled_dot_product_attention) computes this same softmax
        # attention; written out so torch 1.13 and 2.x run the same code.
        attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        x = self.attn_drop(attn) @ v
        return self.proj_drop(self.proj(x.transpose(1, 2).reshape(b, n, c)))


class Mlp(nn.Module):
    """timm.layers.Mlp (fc1, act, drop1, norm=Identity, fc2, drop2)."""

    def __init__(self, in_features, hidden_features=None, out_features=None, act_layer=nn.GELU, drop=0.0):
        super().__init__()
        out_features = out_features or in_features
        hidden_features = hidden_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = act_layer()
        self.drop1 = nn.Dropout(drop)
        self.norm = nn.Identity()
        self.fc2 = nn.Linear(hidden_features, out_features)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x):
        return self.drop2(self.fc2(self.norm(self.drop1(self.act(self.fc1(x))))))


class MambaVisionBlock(nn.Module):
    """mamba_vision.Block: x + mixer(norm1(x)), then x + mlp(norm2(x)); the mixer is Attention
    for the indices in transformer_blocks and MambaVisionMixer (d_state 8, d_conv 3, expand 1)
    otherwise."""

    def __init__(self, dim, num_heads, counter, transformer_blocks, mlp_ratio=4.0, qkv_bias=False, qk_scale=False,
                 drop=0.0, attn_drop=0.0, drop_path=0.0, act_layer=nn.GELU, norm_layer=nn.LayerNorm,
                 layer_scale=None):
        super().__init__()
        self.norm1 = norm_layer(dim)
        if counter in transformer_blocks:
            self.mixer = Attention(dim, num_heads=num_heads, qkv_bias=qkv_bias, qk_norm=qk_scale, attn_drop=attn_drop,
                                   proj_drop=drop, norm_layer=norm_layer)
        else:
            self.mixer = MambaVisionMixer(d_model=dim, d_state=8, d_conv=3, expand=1)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(in_features=dim, hidden_features=int(dim * mlp_ratio), act_layer=act_layer, drop=drop)
        use_layer_scale = layer_scale is not None and type(layer_scale) in (int, float)
        self.gamma_1 = nn.Parameter(layer_scale * torch.ones(dim)) if use_layer_scale else 1
        self.gamma_2 = nn.Parameter(layer_scale * torch.ones(dim)) if use_layer_scale else 1

    def forward(self, x):
        x = x + self.drop_path(self.gamma_1 * self.mixer(self.norm1(x)))
        return x + self.drop_path(self.gamma_2 * self.mlp(self.norm2(x)))


class MambaVisionLayer(nn.Module):
    def __init__(self, dim, depth, num_heads, window_size, conv=False, downsample=True, mlp_ratio=4.0, qkv_bias=True,
                 qk_scale=None, drop=0.0, attn_drop=0.0, drop_path=0.0, layer_scale=None, layer_scale_conv=None,
                 transformer_blocks=()):
        super().__init__()
        self.conv = conv
        self.transformer_block = not conv
        dp = (lambda i: drop_path[i]) if isinstance(drop_path, list) else (lambda i: drop_path)
        if conv:
            self.blocks = nn.ModuleList([ConvBlock(dim=dim, drop_path=dp(i), layer_scale=layer_scale_conv)
                                         for i in range(depth)])
        else:
            self.blocks = nn.ModuleList([
                MambaVisionBlock(dim=dim, counter=i, transformer_blocks=transformer_blocks, num_heads=num_heads,
                                 mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, qk_scale=qk_scale, drop=drop,
                                 attn_drop=attn_drop, drop_path=dp(i), layer_scale=layer_scale)
                for i in range(depth)])
        self.downsample = None if not downsample else Downsample(dim=dim)
        self.window_size = window_size

    def forward(self, x):
        _, _, h, w = x.shape
        if self.transformer_block:
            ws = self.window_size
            pad_r = (ws - w % ws) % ws
            pad_b = (ws - h % ws) % ws
            if pad_r > 0 or pad_b > 0:
                x = F.pad(x, (0, pad_r, 0, pad_b))
            hp, wp = x.shape[2:]
            x = window_partition(x, ws)
        for blk in self.blocks:
            x = blk(x)
        if self.transformer_block:
            x = window_reverse(x, self.window_size, hp, wp)
            if hp != h or wp != w:
                x = x[:, :, :h, :w].contiguous()
        return x if self.downsample is None else self.downsample(x)


class MambaVision(nn.Module):
    def __init__(self, dim, in_dim, depths, window_size, mlp_ratio, num_heads, drop_path_rate=0.2, in_chans=3,
                 num_classes=1000, qkv_bias=True, qk_scale=None, drop_rate=0.0, attn_drop_rate=0.0, layer_scale=None,
                 layer_scale_conv=None, **kwargs):
        super().__init__()
        num_features = int(dim * 2 ** (len(depths) - 1))
        self.num_classes = num_classes
        self.patch_embed = PatchEmbed(in_chans=in_chans, in_dim=in_dim, dim=dim)
        dpr = [x.item() for x in torch.linspace(0, drop_path_rate, sum(depths))]
        self.levels = nn.ModuleList()
        for i in range(len(depths)):
            d = depths[i]
            tb = list(range(d // 2 + 1, d)) if d % 2 != 0 else list(range(d // 2, d))
            self.levels.append(MambaVisionLayer(
                dim=int(dim * 2 ** i), depth=d, num_heads=num_heads[i], window_size=window_size[i],
                mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, qk_scale=qk_scale, conv=(i == 0 or i == 1), drop=drop_rate,
                attn_drop=attn_drop_rate, drop_path=dpr[sum(depths[:i]):sum(depths[:i + 1])], downsample=(i < 3),
                layer_scale=layer_scale, layer_scale_conv=layer_scale_conv, transformer_blocks=tb))
        self.norm = nn.BatchNorm2d(num_features)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(num_features, num_classes) if num_classes > 0 else nn.Identity()
        for m in self.modules():
            if isinstance(m, nn.Linear):
                _trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.LayerNorm, nn.BatchNorm2d)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x):
        x = self.patch_embed(x)
        for level in self.levels:
            x = level(x)
        return torch.flatten(self.avgpool(self.norm(x)), 1)

    def forward(self, x):
        return self.head(self.forward_features(x))


# ----------------------------------------------------------------------------------------------

CONSTRUCTORS = {"vim": VisionMamba, "vmamba": VSSM, "mambavision": MambaVision}


def build(family, args):
    """The model of `family` ("vim", "vmamba", "mambavision") from official keyword arguments."""
    return CONSTRUCTORS[family](**args)


def count_parameters(model):
    return sum(p.numel() for p in model.parameters())
