#!/usr/bin/python3
"""Reference learning rates per step for SchedulesTests, from PyTorch's own schedulers.

Reads {"cases": [{"kind": "onecycle" | "cosine" | "warmup_cosine" | "warmup", "total", "warmup",
"pct_start", "linear"}]} as JSON on stdin; prints {"results": [[the rate of each step t = 0 ..
total - 1, for a base rate of 1]]}: the rate the optimizer uses at step t, after t calls of the
scheduler's step().
onecycle: OneCycleLR(max_lr=1, total_steps, pct_start, anneal_strategy, cycle_momentum=False).
cosine: CosineAnnealingLR(T_max=total). warmup: LinearLR(start_factor=1/W, total_iters=W-1) and
then constant; warmup_cosine: SequentialLR of that and CosineAnnealingLR(T_max=total - W).
"""
import json
import sys
import warnings

try:
    import torch
    from torch.optim import lr_scheduler as S
except ImportError as e:
    sys.stderr.write("PyTorch is not importable by /usr/bin/python3 (%s): apt-get install python3-torch\n" % e)
    sys.exit(3)

warnings.filterwarnings("ignore")
torch.set_default_dtype(torch.float64)


def run(case):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    total, w = case["total"], case["warmup"]
    kind = case["kind"]
    if kind == "onecycle":
        sched = S.OneCycleLR(opt, max_lr=1.0, total_steps=total, pct_start=case["pct_start"],
                             anneal_strategy="linear" if case["linear"] else "cos", cycle_momentum=False)
    elif kind == "cosine":
        sched = S.CosineAnnealingLR(opt, T_max=total)
    elif kind == "warmup":
        sched = S.LinearLR(opt, start_factor=1.0 / w, end_factor=1.0, total_iters=w - 1)
    else:
        sched = S.SequentialLR(opt, [S.LinearLR(opt, start_factor=1.0 / w, end_factor=1.0, total_iters=w - 1),
                                     S.CosineAnnealingLR(opt, T_max=total - w)], milestones=[w])
    rates = []
    for _ in range(total):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return rates


request = json.load(sys.stdin)
json.dump({"results": [run(c) for c in request["cases"]]}, sys.stdout)
