#!/usr/bin/python3
"""Reference losses and gradients for LossesTests, computed by PyTorch's autograd in float64.

Reads {"cases": [...]} as JSON on stdin; each case is a dense layer (x: batch x in, kernel:
in x units as Keras stores it, bias), its activation, a loss and its targets (dense) or labels
(integers), with an optional label_smoothing for integer labels. Prints {"results": [{"loss", "input_gradient", "kernel_gradient", "bias_gradient"}]}
with the gradients flattened row by row.

The losses are Keras's: the mean over the batch of -sum(t log p) for cross-entropy, the mean over
every output of binary cross-entropy, squared and absolute errors. Where the activation is the
one the loss fuses with (softmax for cross-entropy, sigmoid for binary cross-entropy) torch's own
logit forms are used (F.cross_entropy, log_softmax, binary_cross_entropy_with_logits), an
independent route to the same value; otherwise the loss is taken of the activation's output.
(The test keeps probabilities away from Keras's clipping at 1e-7, where the two would differ.)
"""
import json
import sys

try:
    import torch
    import torch.nn.functional as F
except ImportError as e:
    sys.stderr.write("PyTorch is not importable by /usr/bin/python3 (%s): install Debian's python3-torch "
                     "(scripts/setup.sh does, or apt-get install python3-torch)\n" % e)
    sys.exit(3)

torch.set_default_dtype(torch.float64)


def activate(name, alpha, z):
    if name == "linear":
        return z
    if name == "relu":
        return F.relu(z)
    if name == "sigmoid":
        return torch.sigmoid(z)
    if name == "tanh":
        return torch.tanh(z)
    if name == "softmax":
        return torch.softmax(z, dim=1)
    if name == "elu":
        return F.elu(z, alpha=alpha)
    if name == "leakyrelu":
        return F.leaky_relu(z, negative_slope=alpha)
    raise ValueError("unknown activation " + name)


def run(case):
    x = torch.tensor(case["x"], dtype=torch.float64, requires_grad=True)
    kernel = torch.tensor(case["kernel"], dtype=torch.float64, requires_grad=True)
    bias = torch.tensor(case["bias"], dtype=torch.float64, requires_grad=True)
    z = x @ kernel + bias
    act, loss_name = case["activation"], case["loss"]
    y = activate(act, case["alpha"], z)
    batch = z.shape[0]
    if loss_name == "sparse_ce":
        labels = torch.tensor(case["labels"], dtype=torch.long)
        a = case.get("label_smoothing", 0.0)
        if act == "softmax":
            loss = F.cross_entropy(z, labels, label_smoothing=a)
        elif a == 0:
            loss = F.nll_loss(torch.log(y), labels)
        else:
            # Keras's label_smoothing on probabilities: targets (1 - a) one_hot + a / K
            t = (1 - a) * F.one_hot(labels, y.shape[1]).double() + a / y.shape[1]
            loss = -(t * torch.log(y)).sum() / batch
    elif loss_name == "ce":
        t = torch.tensor(case["targets"], dtype=torch.float64)
        log_p = F.log_softmax(z, dim=1) if act == "softmax" else torch.log(y)
        loss = -(t * log_p).sum() / batch
    elif loss_name == "bce":
        t = torch.tensor(case["targets"], dtype=torch.float64)
        loss = F.binary_cross_entropy_with_logits(z, t) if act == "sigmoid" else F.binary_cross_entropy(y, t)
    elif loss_name == "mse":
        loss = F.mse_loss(y, torch.tensor(case["targets"], dtype=torch.float64))
    elif loss_name == "mae":
        loss = F.l1_loss(y, torch.tensor(case["targets"], dtype=torch.float64))
    else:
        raise ValueError("unknown loss " + loss_name)
    loss.backward()
    return {"loss": loss.item(),
            "input_gradient": x.grad.flatten().tolist(),
            "kernel_gradient": kernel.grad.flatten().tolist(),
            "bias_gradient": bias.grad.flatten().tolist()}


request = json.load(sys.stdin)
json.dump({"results": [run(c) for c in request["cases"]]}, sys.stdout)
