#!/usr/bin/python3
"""Reference moving averages for WeightAverageTests: timm's ModelEmaV2 (timm/utils/model_ema.py),
its update written out as timm has it, on a module holding the given tensors.

Reads {"decay", "start": [tensor values], "steps": [[tensor values after each optimizer step]]}
as JSON on stdin; prints {"averages": [[the EMA model's tensors after each step]]}.
"""
import json
import sys
from copy import deepcopy

try:
    import torch
    from torch import nn
except ImportError as e:
    sys.stderr.write("PyTorch is not importable by /usr/bin/python3 (%s): apt-get install python3-torch\n" % e)
    sys.exit(3)


class ModelEmaV2(nn.Module):
    """timm 0.9's ModelEmaV2, without the device option."""

    def __init__(self, model, decay=0.9999):
        super().__init__()
        self.module = deepcopy(model)
        self.module.eval()
        self.decay = decay

    def _update(self, model, update_fn):
        with torch.no_grad():
            for ema_v, model_v in zip(self.module.state_dict().values(), model.state_dict().values()):
                ema_v.copy_(update_fn(ema_v, model_v))

    def update(self, model):
        self._update(model, update_fn=lambda e, m: self.decay * e + (1. - self.decay) * m)


request = json.load(sys.stdin)
model = nn.Module()
for i, values in enumerate(request["start"]):
    model.register_parameter("t%d" % i, nn.Parameter(torch.tensor(values, dtype=torch.float32)))
ema = ModelEmaV2(model, decay=request["decay"])
averages = []
for step in request["steps"]:
    with torch.no_grad():
        for i, values in enumerate(step):
            getattr(model, "t%d" % i).copy_(torch.tensor(values, dtype=torch.float32))
    ema.update(model)
    averages.append([getattr(ema.module, "t%d" % i).tolist() for i in range(len(step))])
json.dump({"averages": averages}, sys.stdout)
