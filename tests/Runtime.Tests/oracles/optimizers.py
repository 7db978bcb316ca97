#!/usr/bin/python3
"""Reference optimizer trajectories for OptimizersTests, computed by PyTorch in float64.

Reads {"cases": [...]} as JSON on stdin; each case names an optimizer with its settings, the
parameters' names and starting values and, per step, every parameter's gradient. Prints
{"trajectories": [[[values of each parameter after step t] for t] for each case]}.

Our optimizers follow Keras's update rules. Where torch's optimizer computes the same rule it is
used as is; where it does not, the difference is bridged here and said so:
  - SGD, momentum, Nesterov: Keras keeps m = momentum m - lr g, w += m (Nesterov: w += momentum m
    - lr g); torch keeps b = momentum b + g, w -= lr b (Nesterov: w -= lr (g + momentum b)). With a
    constant rate m = -lr b, so the trajectories are the same: torch.optim.SGD as is.
  - Adam: Keras divides by sqrt(v) + eps with the bias corrections folded into the rate,
    lr_t = lr sqrt(1 - b2^t) / (1 - b1^t); torch divides by sqrt(v) / sqrt(1 - b2^t) + eps. Both
    agree when torch's eps is eps / sqrt(1 - b2^t), set before every step.
  - RMSprop: Keras (keras/src/optimizers/rmsprop.py) divides by sqrt(v + eps); torch by
    sqrt(v) + eps, which no setting of torch's eps reproduces, so Keras's rule is written out
    here with torch tensors.
  - AdamW is PyTorch's, compared with torch.optim.AdamW as is (weight decay on every tensor but
    the kinds in no_decay, which go to a group with weight_decay 0).
  - Weight decay is Keras 3's decoupled one, w -= lr * decay * w before the update, on kernels
    only: torch.optim.AdamW for Adam (the same rule), and by hand for SGD and RMSprop (torch's
    weight_decay there is an L2 term added to the gradient, which is a different rule).
"""
import json
import math
import sys

try:
    import torch
except ImportError as e:
    sys.stderr.write("PyTorch is not importable by /usr/bin/python3 (%s): install Debian's python3-torch "
                     "(scripts/setup.sh does, or apt-get install python3-torch)\n" % e)
    sys.exit(3)

torch.set_default_dtype(torch.float64)


def is_kernel(name):
    return name.endswith("/kernel")


def run(case):
    names = [p["name"] for p in case["params"]]
    params = [torch.tensor(p["value"], dtype=torch.float64, requires_grad=True) for p in case["params"]]
    kind, lr, decay = case["optimizer"], case["lr"], case["weight_decay"]
    kernels = [p for n, p in zip(names, params) if is_kernel(n)]
    others = [p for n, p in zip(names, params) if not is_kernel(n)]
    optimizer = None
    if kind == "sgd":
        optimizer = torch.optim.SGD(params, lr=lr, momentum=case["momentum"], nesterov=case["nesterov"])
    elif kind == "adamw":
        # PyTorch's own AdamW as is; the excluded kinds in a group without weight decay
        excluded = case.get("no_decay", [])
        skip = lambda n: ("biases" in excluded and n.endswith("/bias")) or ("batchnorm" in excluded and n.endswith(("/gamma", "/beta")))
        optimizer = torch.optim.AdamW(
            [{"params": [p for n, p in zip(names, params) if not skip(n)], "weight_decay": decay},
             {"params": [p for n, p in zip(names, params) if skip(n)], "weight_decay": 0.0}],
            lr=lr, betas=(case["beta1"], case["beta2"]), eps=case["epsilon"])
    elif kind == "adam":
        optimizer = torch.optim.AdamW(
            [{"params": kernels, "weight_decay": decay}, {"params": others, "weight_decay": 0.0}],
            lr=lr, betas=(case["beta1"], case["beta2"]), eps=case["epsilon"])
    velocity = [torch.zeros_like(p) for p in params]
    momentum = [torch.zeros_like(p) for p in params]
    trajectory = []
    for t, gradients in enumerate(case["gradients"], start=1):
        for p, g in zip(params, gradients):
            p.grad = torch.tensor(g, dtype=torch.float64)
        with torch.no_grad():
            if kind not in ("adam", "adamw") and decay > 0:
                for p in kernels:
                    p.mul_(1 - lr * decay)
            if kind == "sgd":
                optimizer.step()
            elif kind == "adamw":
                optimizer.step()
            elif kind == "adam":
                for group in optimizer.param_groups:
                    group["eps"] = case["epsilon"] / math.sqrt(1 - case["beta2"] ** t)
                optimizer.step()
            elif kind == "rmsprop":
                rho, eps, mu = case["rho"], case["epsilon"], case["momentum"]
                for p, v, m in zip(params, velocity, momentum):
                    v.mul_(rho).add_((1 - rho) * p.grad * p.grad)
                    increment = lr * p.grad / torch.sqrt(v + eps)
                    if mu > 0:
                        m.mul_(mu).add_(increment)
                        p.sub_(m)
                    else:
                        p.sub_(increment)
            else:
                raise ValueError("unknown optimizer " + kind)
        trajectory.append([p.detach().tolist() for p in params])
    return trajectory


request = json.load(sys.stdin)
json.dump({"trajectories": [run(c) for c in request["cases"]]}, sys.stdout)
