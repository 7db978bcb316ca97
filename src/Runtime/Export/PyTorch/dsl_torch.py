"""Written by `dsl export --format pytorch`: the pieces of a CnnDsl model that PyTorch does not
have in Keras's form, our optimizers' update rules, and a reader and writer of dsl's checkpoint
format (docs/checkpoints.md), so that weights go both ways without dsl needing Python.

Only stable PyTorch APIs: runs on 1.13 and 2.x.
"""
import hashlib
import math
import struct

import torch
from torch import nn
import torch.nn.functional as F
from torch.utils.data import DistributedSampler


def same_pads(size, kernel, stride, dilation):
    """TensorFlow's `same`: out = ceil(in / stride); the odd extra row/column goes bottom/right."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _pads(x, pads, kernel, stride, dilation):
    """(left, right, top, bottom) for F.pad; "same" is resolved for this input's size."""
    if pads == "same":
        top, bottom = same_pads(x.shape[2], kernel[0], stride[0], dilation[0])
        left, right = same_pads(x.shape[3], kernel[1], stride[1], dilation[1])
        return (left, right, top, bottom)
    return tuple(pads)


class Conv2d(nn.Conv2d):
    """nn.Conv2d with Keras's padding: symmetric padding is the convolution's own; an uneven split
    (TensorFlow's `same` with an even kernel or a stride) is an explicit F.pad before it."""

    def __init__(self, cin, cout, kernel, stride, dilation, groups, bias, pads):
        symmetric = pads != "same" and pads[0] == pads[1] and pads[2] == pads[3]
        super().__init__(cin, cout, kernel, stride=stride, dilation=dilation, groups=groups, bias=bias,
                         padding=(pads[2], pads[0]) if symmetric else 0)
        self.pads = None if symmetric else pads
        # Keras's glorot_uniform for a fresh model (fan_in = kh kw cin/groups, fan_out = kh kw cout); bias 0
        receptive = kernel[0] * kernel[1]
        limit = math.sqrt(6.0 / (receptive * cin // groups + receptive * cout))
        nn.init.uniform_(self.weight, -limit, limit)
        if bias:
            nn.init.zeros_(self.bias)

    def forward(self, x):
        if self.pads is not None:
            x = F.pad(x, _pads(x, self.pads, self.kernel_size, self.stride, self.dilation))
        return super().forward(x)


class Linear(nn.Linear):
    """nn.Linear initialised as Keras's Dense (glorot_uniform, zero bias)."""

    def __init__(self, cin, cout, bias=True):
        super().__init__(cin, cout, bias=bias)
        limit = math.sqrt(6.0 / (cin + cout))
        nn.init.uniform_(self.weight, -limit, limit)
        if bias:
            nn.init.zeros_(self.bias)


class FixedConv2d(nn.Module):
    """A convolution with constant kernels (sobel, laplacian, a matrix ...): not learned and not in
    the state dict (a non-persistent buffer); the gradient still flows to its input."""

    def __init__(self, hwio, shape, stride, dilation, pads):
        super().__init__()
        kh, kw, cin, cout = shape
        weight = torch.tensor(hwio, dtype=torch.float32).reshape(kh, kw, cin, cout).permute(3, 2, 0, 1).contiguous()
        self.register_buffer("weight", weight, persistent=False)
        self.kernel, self.stride, self.dilation, self.pads = (kh, kw), stride, dilation, pads

    def forward(self, x):
        x = F.pad(x, _pads(x, self.pads, self.kernel, self.stride, self.dilation))
        return F.conv2d(x, self.weight, stride=self.stride, dilation=self.dilation)


class Pool2d(nn.Module):
    """Max, min and average pooling as Keras's: padding cells never win a max or a min (padded with
    -inf; min(x) = -max(-x)) and are not counted in an average (count_include_pad off, for any split)."""

    def __init__(self, kind, kernel, stride, pads):
        super().__init__()
        self.kind, self.kernel, self.stride, self.pads = kind, kernel, stride, pads

    def forward(self, x):
        pads = _pads(x, self.pads, self.kernel, self.stride, (1, 1))
        padded = any(pads)
        if self.kind == "average":
            if not padded:
                return F.avg_pool2d(x, self.kernel, self.stride)
            ones = torch.ones((1, 1) + tuple(x.shape[2:]), dtype=x.dtype, device=x.device)
            return F.avg_pool2d(F.pad(x, pads), self.kernel, self.stride) / F.avg_pool2d(F.pad(ones, pads), self.kernel, self.stride)
        sign = -1.0 if self.kind == "min" else 1.0
        y = sign * x
        if padded:
            y = F.pad(y, pads, value=-math.inf)
        return sign * F.max_pool2d(y, self.kernel, self.stride)


class GlobalPool2d(nn.Module):
    """Global average, max or min pooling: NCHW in, a vector of channels out."""

    def __init__(self, kind):
        super().__init__()
        self.kind = kind

    def forward(self, x):
        if self.kind == "average":
            return x.mean(dim=(2, 3))
        if self.kind == "max":
            return x.amax(dim=(2, 3))
        return x.amin(dim=(2, 3))


class Maxout(nn.Module):
    """The largest of each group of `pieces` consecutive channels (channel u * pieces + p)."""

    def __init__(self, pieces):
        super().__init__()
        self.pieces = pieces

    def forward(self, x):
        shape = tuple(x.shape)
        return x.reshape((shape[0], shape[1] // self.pieces, self.pieces) + shape[2:]).amax(dim=2)


class BatchNorm(nn.Module):
    """Keras's BatchNormalization: moving = momentum * moving + (1 - momentum) * batch (Keras's
    momentum 0.99 is PyTorch's 0.01), eps 0.001, and the moving variance takes the batch's biased
    variance (PyTorch's BatchNorm takes the unbiased one, so it is written out here). The tensors
    have nn.BatchNorm2d's names: weight, bias, running_mean, running_var."""

    def __init__(self, channels, eps=0.001, momentum=0.99):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x):
        dims = [0] + list(range(2, x.dim()))
        view = [1, -1] + [1] * (x.dim() - 2)
        if self.training:
            mean = x.mean(dim=dims)
            var = x.var(dim=dims, unbiased=False)
            with torch.no_grad():
                self.running_mean.mul_(self.momentum).add_((1 - self.momentum) * mean)
                self.running_var.mul_(self.momentum).add_((1 - self.momentum) * var)
        else:
            mean, var = self.running_mean, self.running_var
        scale = self.weight / torch.sqrt(var + self.eps)
        return (x - mean.reshape(view)) * scale.reshape(view) + self.bias.reshape(view)


# ---------------------------------------------------------------------------------------------
# Optimizers: Keras's update rules and defaults, as dsl run's (src/Runtime/Training/Optimizers.cs),
# in float32. torch.optim's SGD and Adam compute the same trajectories only up to a reparametrisation,
# and its RMSprop puts epsilon elsewhere, so the rules are written out.

DEFAULTS = {
    "sgd": {"name": "sgd", "lr": 0.01, "momentum": 0.0, "nesterov": False},
    "adam": {"name": "adam", "lr": 0.001, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-7},
    "rmsprop": {"name": "rmsprop", "lr": 0.001, "rho": 0.9, "momentum": 0.0, "epsilon": 1e-7},
    "adamw": {"name": "adamw", "lr": 0.001, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8, "weight_decay": 0.01, "no_decay": []},
}


def adamw_decayed(name, no_decay):
    """dsl's Optimizers.Decayed: AdamW decays every tensor but the excluded kinds."""
    return not (("biases" in no_decay and name.endswith("/bias"))
                or ("batchnorm" in no_decay and (name.endswith("/gamma") or name.endswith("/beta"))))


class KerasOptimizer:
    """settings: {"name": "sgd"|"adam"|"rmsprop", "lr": ..., ...}; params: [(our name, parameter)].
    Weight decay is decoupled (w *= 1 - lr * decay, before the update) and applies to kernels only."""

    def __init__(self, settings, params, weight_decay=0.0):
        self.settings = dict(settings)
        self.params = [(n, p) for n, p in params if p.requires_grad]
        self.weight_decay = weight_decay
        name = self.settings["name"]
        first = name in ("adam", "adamw") or self.settings.get("momentum", 0) > 0
        second = name in ("adam", "adamw", "rmsprop")
        self.m = [torch.zeros_like(p) if first else None for _, p in self.params]
        self.v = [torch.zeros_like(p) if second else None for _, p in self.params]
        self.step_count = 0
        self.lr_scale = 1.0

    @property
    def lr(self):
        return self.lr_scale * self.settings["lr"]

    def zero_grad(self):
        for _, p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self):
        self.step_count += 1
        s, lr = self.settings, self.lr
        f32 = lambda v: torch.tensor(v, dtype=torch.float32).item()
        for i, (name, w) in enumerate(self.params):
            if w.grad is None:
                continue
            g = w.grad
            if self.weight_decay > 0 and name.endswith("/kernel"):
                w.mul_(f32(1 - lr * self.weight_decay))
            m, v = self.m[i], self.v[i]
            if s["name"] == "sgd":
                mu = f32(s["momentum"])
                if mu == 0:
                    w.sub_(f32(lr) * g)
                else:
                    m.mul_(mu).sub_(f32(lr) * g)
                    w.add_(mu * m - f32(lr) * g if s["nesterov"] else m)
            elif s["name"] == "adamw":
                # PyTorch's AdamW, in float32 as dsl run's
                b1, b2, eps = f32(s["beta1"]), f32(s["beta2"]), f32(s["epsilon"])
                if s["weight_decay"] > 0 and adamw_decayed(name, s["no_decay"]):
                    w.mul_(f32(1 - lr * s["weight_decay"]))
                step_size = f32(lr / (1 - s["beta1"] ** self.step_count))
                correction = f32(math.sqrt(1 - s["beta2"] ** self.step_count))
                m.mul_(b1).add_((1 - b1) * g)
                v.mul_(b2).add_((1 - b2) * g * g)
                w.sub_(step_size * m / (torch.sqrt(v) / correction + eps))
            elif s["name"] == "adam":
                b1, b2, eps = f32(s["beta1"]), f32(s["beta2"]), f32(s["epsilon"])
                lr_t = f32(lr * math.sqrt(1 - s["beta2"] ** self.step_count) / (1 - s["beta1"] ** self.step_count))
                m.mul_(b1).add_((1 - b1) * g)
                v.mul_(b2).add_((1 - b2) * g * g)
                w.sub_(lr_t * m / (torch.sqrt(v) + eps))
            else:
                rho, eps, mu = f32(s["rho"]), f32(s["epsilon"]), f32(s["momentum"])
                v.mul_(rho).add_((1 - rho) * g * g)
                increment = f32(lr) * g / torch.sqrt(v + eps)
                if mu > 0:
                    m.mul_(mu).add_(increment)
                    w.sub_(m)
                else:
                    w.sub_(increment)

    def state_dict(self):
        return {"m": self.m, "v": self.v, "step": self.step_count, "lr_scale": self.lr_scale}

    def load_state_dict(self, state):
        for mine, saved in ((self.m, state["m"]), (self.v, state["v"])):
            for i, t in enumerate(saved):
                if t is not None:
                    mine[i].copy_(t)
        self.step_count, self.lr_scale = state["step"], state["lr_scale"]


def loss_kind(kind, classes):
    """As dsl run: cross-entropy on one output is binary cross-entropy."""
    return "binary_crossentropy" if kind == "crossentropy" and classes == 1 else kind


def fused_loss(kind, classes, activation):
    """Whether the loss takes the last layer's pre-activation, as our runtime fuses softmax into
    cross-entropy and sigmoid into binary cross-entropy (gradient y - t, exact and stable)."""
    k = loss_kind(kind, classes)
    return (k == "crossentropy" and activation == "softmax") or (k == "binary_crossentropy" and activation == "sigmoid")


def loss_value(kind, output, labels, classes, fused, smoothing=0.0):
    """Keras's losses, the mean over the batch (and outputs); `output` is the pre-activation when
    `fused`, else the model's output (probabilities clipped to [1e-7, 1 - 1e-7] for logarithms).
    smoothing: Keras's label_smoothing of the cross-entropies (targets t (1 - a) + a / K)."""
    k = loss_kind(kind, classes)
    if k == "crossentropy":
        if fused:
            return F.cross_entropy(output, labels, label_smoothing=smoothing)
        p = output.clamp(1e-7, 1 - 1e-7)
        if smoothing:
            t = F.one_hot(labels, output.shape[1]).to(output.dtype) * (1 - smoothing) + smoothing / output.shape[1]
            return -(t * torch.log(p)).sum(1).mean()
        return -torch.log(p.gather(1, labels.reshape(-1, 1))).mean()
    targets = labels.to(output.dtype).reshape(-1, 1) if classes == 1 else F.one_hot(labels, classes).to(output.dtype)
    if k == "binary_crossentropy" and smoothing:
        targets = targets * (1 - smoothing) + smoothing / 2
    if k == "binary_crossentropy":
        if fused:
            return F.binary_cross_entropy_with_logits(output, targets)
        p = output.clamp(1e-7, 1 - 1e-7)
        return -(targets * torch.log(p) + (1 - targets) * torch.log(1 - p)).mean()
    if k == "mse":
        return F.mse_loss(output, targets)
    return F.l1_loss(output, targets)


def predict(output, fused):
    """The class of each example, as dsl's: one output is class 1 from 0.5 on (a logit's 0)."""
    if output.shape[1] == 1:
        return (output[:, 0] >= (0 if fused else 0.5)).to(torch.int64)
    return output.argmax(dim=1)


# ---------------------------------------------------------------------------------------------
# The order of an epoch's examples: dsl run's (Trainer.Order), .NET's seeded System.Random (Knuth's
# subtractive generator, as .NET keeps it for a given seed) shuffling 0..n-1 with seed
# seed * 1000003 + epoch, so that a run here takes dsl run's batches.

class DotNetRandom:
    MBIG, MSEED = 2147483647, 161803398

    def __init__(self, seed):
        seed = ((seed + 2 ** 31) % 2 ** 32) - 2 ** 31  # an int32, as C#'s unchecked arithmetic
        a = [0] * 56
        mj = self.MSEED - (self.MBIG if seed == -2 ** 31 else abs(seed))
        a[55] = mj
        mk = 1
        for i in range(1, 55):
            ii = (21 * i) % 55
            a[ii] = mk
            mk = mj - mk
            if mk < 0:
                mk += self.MBIG
            mj = a[ii]
        for _ in range(4):
            for i in range(1, 56):
                a[i] -= a[1 + (i + 30) % 55]
                if a[i] < 0:
                    a[i] += self.MBIG
        self.a, self.inext, self.inextp = a, 0, 21

    def _sample(self):
        i = self.inext + 1 if self.inext + 1 < 56 else 1
        j = self.inextp + 1 if self.inextp + 1 < 56 else 1
        v = self.a[i] - self.a[j]
        if v == self.MBIG:
            v -= 1
        if v < 0:
            v += self.MBIG
        self.a[i], self.inext, self.inextp = v, i, j
        return v * (1.0 / self.MBIG)

    def next(self, low, high):
        return int(self._sample() * (high - low)) + low

    def shuffle(self, values):
        n = len(values)
        for i in range(n - 1):
            j = self.next(i, n)
            if j != i:
                values[i], values[j] = values[j], values[i]
        return values


def epoch_order(n, seed, epoch):
    return DotNetRandom(seed * 1000003 + epoch).shuffle(list(range(n)))


class EpochSampler(DistributedSampler):
    """A DistributedSampler over dsl run's order of the epoch: of each global batch of `batch`
    examples, process `rank` takes places rank, rank + world, ... (a partial last batch is split
    as evenly as it goes)."""

    def __init__(self, n, batch, world, rank, seed):
        super().__init__(range(n), num_replicas=world, rank=rank, shuffle=False, seed=seed)
        self.n, self.batch, self.seed = n, batch, seed

    def batches(self):
        """(this process's examples, the global batch's size) for each step of the epoch."""
        order = epoch_order(self.n, self.seed, self.epoch)
        for start in range(0, self.n, self.batch):
            whole = order[start:start + self.batch]
            yield whole[self.rank::self.num_replicas], len(whole)

    def __iter__(self):
        return (i for b, _ in self.batches() for i in b)

    def __len__(self):
        return sum(len(b) for b, _ in self.batches())


# ---------------------------------------------------------------------------------------------
# Augmentation: dsl run's (src/Runtime/Data/Augmentation.cs), with its random draws, so that a run
# here sees the images dsl run would: shifts of up to 10% of the size, horizontal flips, rotations
# of up to 10 degrees, each output pixel its nearest source pixel (edges repeat).

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & _MASK

    def next(self):
        self.state = (self.state + _GOLDEN) & _MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        return z ^ (z >> 31)

    def next_double(self):
        return (self.next() >> 11) * (1.0 / (1 << 53))


def _below(r, n):
    """Uniform in 0..n-1, as dsl run's Augmentation.Below."""
    return ((r.next() >> 32) * n) >> 32


def _reflect(i, n):
    """numpy's and torch's 'reflect' index (the edge is not repeated), for any offset."""
    if n == 1:
        return 0
    period = 2 * (n - 1)
    i %= period
    return i if i < n else period - i


def augment(x, names, seed, step, positions):
    """x: a float NHWC batch; step: the optimizer steps taken before this one; positions: each
    example's place in the global batch (its draws come from (seed, step, place), as dsl run's).
    names: shift, flip, rotate, "crop P", "crop P reflect", "cutout S" (applied in that order)."""
    shift, flip, rotate = "shift" in names, "flip" in names, "rotate" in names
    crop, reflect, cutout = 0, False, 0
    for name in names:
        words = name.split()
        if words[0] == "crop":
            crop, reflect = int(words[1]), words[-1] == "reflect"
        elif words[0] == "cutout":
            cutout = int(words[1])
    geometric = shift or flip or rotate
    if not (geometric or crop or cutout) or x.dim() != 4:
        return x
    b, h, w, c = x.shape
    rows, windows = [], []
    for i in positions:
        r = SplitMix64(((seed * _GOLDEN) & _MASK) ^ ((step << 20) & _MASK) ^ i)
        dy = (r.next_double() * 2 - 1) * 0.1 * h if shift else 0.0
        dx = (r.next_double() * 2 - 1) * 0.1 * w if shift else 0.0
        mirror = flip and r.next_double() < 0.5
        angle = (r.next_double() * 2 - 1) * 10 * math.pi / 180 if rotate else 0.0
        rows.append((dy, dx, 1.0 if mirror else 0.0, math.cos(angle), math.sin(angle)))
        oy = _below(r, 2 * crop + 1) if crop else 0
        ox = _below(r, 2 * crop + 1) if crop else 0
        cy = _below(r, h) if cutout else 0
        cx = _below(r, w) if cutout else 0
        windows.append((oy, ox, cy, cx))
    if geometric:
        x = _geometric(x, rows)
    if crop or cutout:
        x = x.clone()
        for k, (oy, ox, cy, cx) in enumerate(windows):
            if crop:
                ys = [y + oy - crop for y in range(h)]
                xs = [v + ox - crop for v in range(w)]
                if reflect:
                    ys, xs = [_reflect(y, h) for y in ys], [_reflect(v, w) for v in xs]
                iy = torch.tensor([min(max(y, 0), h - 1) for y in ys], device=x.device)
                ix = torch.tensor([min(max(v, 0), w - 1) for v in xs], device=x.device)
                window = x[k].index_select(0, iy).index_select(1, ix)
                inside = (torch.tensor([0 <= y < h for y in ys], device=x.device).reshape(h, 1, 1)
                          & torch.tensor([0 <= v < w for v in xs], device=x.device).reshape(1, w, 1))
                x[k] = torch.where(inside, window, torch.zeros_like(window))
            if cutout:
                y1, y2 = min(max(cy - cutout // 2, 0), h), min(max(cy + cutout // 2, 0), h)
                x1, x2 = min(max(cx - cutout // 2, 0), w), min(max(cx + cutout // 2, 0), w)
                x[k, y1:y2, x1:x2, :] = 0
    return x


def _geometric(x, rows):
    b, h, w, c = x.shape
    p = torch.tensor(rows, dtype=torch.float64).reshape(b, 5, 1, 1)
    dy, dx, mirror, cos, sin = (p[:, k] for k in range(5))
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    ys = torch.arange(h, dtype=torch.float64).reshape(1, h, 1)
    xs = torch.arange(w, dtype=torch.float64).reshape(1, 1, w)
    # the inverse map: undo the shift, then the rotation about the centre, then the flip
    ry, rx = ys - dy - cy, xs - dx - cx
    sy = cos * ry + sin * rx + cy
    sx = -sin * ry + cos * rx + cx
    sx = torch.where(mirror > 0, (w - 1) - sx, sx)
    # torch.round and .NET's Math.Round both round halves to even
    iy = sy.round().clamp(0, h - 1).to(torch.int64)
    ix = sx.round().clamp(0, w - 1).to(torch.int64)
    index = (iy * w + ix).reshape(b, h * w, 1).expand(b, h * w, c).to(x.device)
    return x.reshape(b, h * w, c).gather(1, index).reshape(b, h, w, c)


# ---------------------------------------------------------------------------------------------
# dsl checkpoints (docs/checkpoints.md): version 3, little-endian, SHA-256 at the end.

MAGIC = b"CNNDSLCK"


class CheckpointError(Exception):
    pass


def _string(s):
    data = s.encode("utf-8")
    n, prefix = len(data), bytearray()
    while True:  # .NET BinaryWriter's 7-bit length prefix
        byte = n & 0x7F
        n >>= 7
        prefix.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(prefix) + data


def write_checkpoint(path, architecture_hash, tensors, epoch=0, steps=0, best=-math.inf, batch_size=32,
                     optimizer="rmsprop", seed=0, examples=32):
    """tensors: [(our name, float32 tensor in our layout)]. The position says `epoch` epochs are
    done; the optimizer's state is not written (a PyTorch run resumes from its own last.pt)."""
    import os
    import tempfile
    out = bytearray(MAGIC)
    out += struct.pack("<i", 3) + bytes.fromhex(architecture_hash)
    out += struct.pack("<iiqqdddi", epoch, 0, steps, steps, best, 1.0, math.inf, 0)
    out += struct.pack("<i", batch_size) + _string(optimizer) + struct.pack("<ii", seed, max(examples, batch_size))
    out += struct.pack("<dqqd", 0.0, 0, 0, 0.0)
    out += struct.pack("<i", len(tensors))
    for name, t in tensors:
        values = t.detach().to("cpu", torch.float32).contiguous().reshape(-1)
        out += _string(name) + struct.pack("<i", values.numel()) + values.numpy().astype("<f4").tobytes()
    out += hashlib.sha256(out).digest()
    folder = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=os.path.basename(path) + ".", suffix=".tmp")
    with os.fdopen(fd, "wb") as f:  # written aside and renamed: an interrupted write keeps the old file
        f.write(out)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)


def read_checkpoint(path):
    """Returns (architecture hash hex, {our name: float32 tensor, flat})."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8 + 4 + 32 + 32 or data[:8] != MAGIC:
        raise CheckpointError("%s: not a CnnDsl checkpoint (it does not start with CNNDSLCK)" % path)
    if hashlib.sha256(data[:-32]).digest() != data[-32:]:
        raise CheckpointError("%s: the checksum does not match: the file is truncated or damaged" % path)
    version = struct.unpack_from("<i", data, 8)[0]
    if version not in (2, 3):
        raise CheckpointError("%s: format version %d; this reader reads versions 2 and 3" % (path, version))
    arch = data[12:44].hex()
    at = 44 + struct.calcsize("<iiqqdddi")

    def string(at):
        n, shift = 0, 0
        while True:
            byte = data[at]
            at += 1
            n |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return data[at:at + n].decode("utf-8"), at + n

    if version >= 3:
        at += 4
        _, at = string(at)
        at += 8 + struct.calcsize("<dqqd")
    count = struct.unpack_from("<i", data, at)[0]
    at += 4
    tensors = {}
    for _ in range(count):
        name, at = string(at)
        length = struct.unpack_from("<i", data, at)[0]
        at += 4
        tensors[name] = torch.frombuffer(bytearray(data[at:at + 4 * length]), dtype=torch.float32)
        at += 4 * length
    return arch, tensors


def _to_torch(values, layout, shape):
    t = values.reshape(shape)
    if layout == "hwio":
        return t.permute(3, 2, 0, 1).contiguous()
    if layout == "io":
        return t.t().contiguous()
    return t.clone()


def _from_torch(t, layout):
    t = t.detach().cpu()
    if layout == "hwio":
        return t.permute(2, 3, 1, 0).contiguous()
    if layout == "io":
        return t.t().contiguous()
    return t


def state_dict_from(tensors, table, path="the checkpoint"):
    """Our tensors as a state dict for the model; the first missing or mis-sized tensor is named."""
    state = {}
    for name, key, layout, shape in table:
        values = tensors.get(name)
        need = math.prod(shape)
        if values is None:
            raise CheckpointError("%s has no tensor '%s' (the model's %s); it was saved from another model" % (path, name, key))
        if values.numel() != need:
            raise CheckpointError("%s: tensor '%s' has %d values, the model needs %d (%s); it was saved from another model"
                                  % (path, name, values.numel(), need, "x".join(map(str, shape))))
        state[key] = _to_torch(values, layout, shape)
    return state


def load_dsl_checkpoint(model, path, table, architecture_hash=None):
    """Loads a dsl checkpoint into the model (weights and batchnorm statistics)."""
    arch, tensors = read_checkpoint(path)
    state = state_dict_from(tensors, table, path)
    own = model.state_dict()
    for key in own:  # PyTorch's own counters (none of ours) keep their values
        state.setdefault(key, own[key])
    model.load_state_dict(state)
    return arch == architecture_hash


def dsl_tensors(model, table):
    """The model's tensors in our names and layouts, in our checkpoints' order."""
    state = model.state_dict()
    return [(name, _from_torch(state[key], layout)) for name, key, layout, _ in table]


def _torch_shape(layout, shape):
    if layout == "hwio":
        return (shape[3], shape[2], shape[0], shape[1])
    if layout == "io":
        return (shape[1], shape[0])
    return tuple(shape)


def load_state_dict_checked(model, state, table, path="the state dict"):
    """A PyTorch state dict (a run of one's own) into the model; the first missing or mis-shaped
    tensor is named, in PyTorch's and our names."""
    own = model.state_dict()
    for name, key, layout, shape in table:
        want = _torch_shape(layout, shape)
        if key not in state:
            raise CheckpointError("%s has no tensor '%s' (our %s); it was saved from another model" % (path, key, name))
        if tuple(state[key].shape) != want:
            raise CheckpointError("%s: tensor '%s' (our %s) is %s, the model needs %s; it was saved from another model" % (
                path, key, name, "x".join(map(str, state[key].shape)), "x".join(map(str, want))))
    model.load_state_dict({k: state.get(k, v) for k, v in own.items()})


def convert(module, args):
    """`python3 model.py IN OUT`: a dsl checkpoint (.ckpt) to a PyTorch state dict (.pt), or a
    state dict back to a dsl checkpoint, for weights trained by a loop of one's own."""
    if len(args) != 2 or args[0].endswith(".ckpt") == args[1].endswith(".ckpt"):
        raise SystemExit("usage: python3 model.py WEIGHTS.ckpt STATE.pt (a dsl checkpoint to a state dict), "
                         "or python3 model.py STATE.pt WEIGHTS.ckpt (back)")
    source, target = args
    net = module.Model()
    try:
        if source.endswith(".ckpt"):
            load_dsl_checkpoint(net, source, module.TENSORS, module.ARCHITECTURE_HASH)
            torch.save(net.state_dict(), target)
        else:
            load_state_dict_checked(net, torch.load(source, map_location="cpu"), module.TENSORS, source)
            write_checkpoint(target, module.ARCHITECTURE_HASH, dsl_tensors(net, module.TENSORS))
    except (CheckpointError, OSError) as e:
        raise SystemExit("model.py: %s" % e)
    print("wrote %s" % target)
