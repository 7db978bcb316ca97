#!/usr/bin/python3
"""The Python side of PyTorchTests: runs projects written by `dsl export --format pytorch`
(PyTorchExport.Write) with the real PyTorch, through their own model.py, train.py and
dsl_torch.py, so that the tests pin the generated code, not a copy of it.

Reads {"mode": ..., "cases": [...]} as JSON on stdin; writes its results as files in each case's
folder and prints {"done": N}.
  forward:   dir/weights.ckpt into the model, dir/input.bin (float32, NHWC, `batch` examples) through
             it in inference mode; writes dir/output.bin (float32, as our runtime's output).
  train:     from dir/weights.ckpt, `steps` steps of train.py's optimizer and loss (its settings from
             the model's train section) on dir/inputs.bin and dir/labels.bin (int32); writes dir/after.ckpt.
  roundtrip: dir/weights.ckpt to a state dict file dir/state.pt and back as dir/roundtrip.ckpt (a dsl checkpoint).
  import:    dir/state.pt (a state dict) as dir/roundtrip.ckpt.
  data:      train.py's reader on case["data"] (a data set's name or path); writes dir/train_x.bin
             (uint8 NHWC), train_y.bin (int32), test_x.bin, test_y.bin.
  augment:   dsl_torch.augment on dir/images.bin (NHWC) for seed, step and positions; writes dir/augmented.bin.
"""
import contextlib
import importlib
import json
import sys

try:
    import torch
except ImportError as e:
    sys.stderr.write("PyTorch is not importable by /usr/bin/python3 (%s): install Debian's python3-torch "
                     "(scripts/setup.sh does, or apt-get install python3-torch)\n" % e)
    sys.exit(3)

torch.set_num_threads(1)


def project(folder):
    """The folder's own modules (each project has a model.py of its own)."""
    for name in ("model", "train", "dsl_torch"):
        sys.modules.pop(name, None)
    sys.path.insert(0, folder)
    try:
        return importlib.import_module("model"), importlib.import_module("train"), importlib.import_module("dsl_torch")
    finally:
        sys.path.pop(0)


def floats(path, shape):
    with open(path, "rb") as f:
        return torch.frombuffer(bytearray(f.read()), dtype=torch.float32).reshape(shape)


def loaded(case):
    model, train, dsl = project(case["dir"])
    net = model.Model()
    dsl.load_dsl_checkpoint(net, case["dir"] + "/weights.ckpt", model.TENSORS, model.ARCHITECTURE_HASH)
    return model, train, dsl, net


def forward(case):
    model, _, _, net = loaded(case)
    net.eval()
    with torch.no_grad():
        shape = tuple(case.get("shape") or model.INPUT_SHAPE)  # an any-size model: the size to run at
        out = net(floats(case["dir"] + "/input.bin", (case["batch"],) + shape))
    with open(case["dir"] + "/output.bin", "wb") as f:
        f.write(out.contiguous().numpy().astype("<f4").tobytes())


def train(case):
    model, train, dsl, net = loaded(case)
    s = train.settings(train.parse([]))
    keys = {key: name for name, key, _, _ in model.TENSORS}
    optimizer = dsl.KerasOptimizer(s["optimizer"], [(keys[k], p) for k, p in net.named_parameters()], s["weight_decay"])
    steps, batch = case["steps"], case["batch"]
    x = floats(case["dir"] + "/inputs.bin", (steps, batch) + tuple(model.INPUT_SHAPE))
    with open(case["dir"] + "/labels.bin", "rb") as f:
        labels = torch.frombuffer(bytearray(f.read()), dtype=torch.int32).to(torch.int64).reshape(steps, batch)
    classes = model.OUTPUT_SHAPE[-1]
    fused = dsl.fused_loss(s["loss"], classes, model.OUTPUT_ACTIVATION)
    net.train()
    for t in range(steps):
        loss = dsl.loss_value(s["loss"], net(x[t], logits=fused), labels[t], classes, fused)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    dsl.write_checkpoint(case["dir"] + "/after.ckpt", model.ARCHITECTURE_HASH, dsl.dsl_tensors(net, model.TENSORS),
                         epoch=1, steps=steps, batch_size=batch, optimizer=s["optimizer"]["name"], examples=steps * batch)


def roundtrip(case):
    """Through a real state dict file: model.py's own conversion both ways."""
    model, _, dsl = project(case["dir"])
    dsl.convert(model, [case["dir"] + "/weights.ckpt", case["dir"] + "/state.pt"])
    dsl.convert(model, [case["dir"] + "/state.pt", case["dir"] + "/roundtrip.ckpt"])


def import_state(case):
    model, _, dsl = project(case["dir"])
    dsl.convert(model, [case["dir"] + "/state.pt", case["dir"] + "/roundtrip.ckpt"])


def augment(case):
    _, _, dsl = project(case["dir"])
    x = floats(case["dir"] + "/images.bin", tuple(case["shape"]))
    out = dsl.augment(x, case["names"], case["seed"], case["step"], case["positions"])
    with open(case["dir"] + "/augmented.bin", "wb") as f:
        f.write(out.contiguous().numpy().astype("<f4").tobytes())


def data(case):
    _, train, _ = project(case["dir"])
    parts = train.load_data(case["data"])
    for name, t in zip(("train_x", "train_y", "test_x", "test_y"), parts):
        with open(case["dir"] + "/" + name + ".bin", "wb") as f:
            f.write((t.to(torch.int32) if name.endswith("y") else t).contiguous().numpy().tobytes())


request = json.load(sys.stdin)
run = {"data": data, "forward": forward, "train": train, "roundtrip": roundtrip, "import": import_state, "augment": augment}[request["mode"]]
for case in request["cases"]:
    try:
        with contextlib.redirect_stdout(sys.stderr):  # stdout is the JSON answer's
            run(case)
    except Exception as e:
        raise SystemExit("%s: %s: %s" % (case["dir"], type(e).__name__, e))
print(json.dumps({"done": len(request["cases"])}))
