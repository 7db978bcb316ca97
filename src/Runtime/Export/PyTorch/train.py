#!/usr/bin/env python3
"""Trains model.py as `dsl run` trains the .cnn file (written by `dsl export --format pytorch`).

The file's train section (model.TRAINING) gives the settings, the command line overrides them,
dsl run's defaults fill the rest (rmsprop, batch 32, one epoch, seed 0). Data sets have dsl run's
names and folders. One process, or several with DistributedDataParallel: `--nproc N` spawns N on
this machine; a launcher (torchrun, or MASTER_ADDR/MASTER_PORT/RANK/WORLD_SIZE set by hand) starts
one per rank. gloo on CPUs, NCCL on GPUs. Rank 0 prints the epoch lines and writes OUT/last.ckpt
and OUT/best.ckpt, dsl checkpoints (`dsl eval MODEL.cnn --weights OUT/last.ckpt`), and OUT/last.pt,
what --resume continues from.
"""
import argparse
import gzip
import math
import os
import struct
import sys
import time
import warnings

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

import model as generated
from dsl_torch import DEFAULTS, CheckpointError, DotNetRandom, EpochSampler, KerasOptimizer, augment, dsl_tensors, fused_loss, load_dsl_checkpoint, loss_value, predict, write_checkpoint

HERE = os.path.dirname(os.path.abspath(__file__))
# DDP's note that a 1-channel kernel's gradient strides differ from its bucket's: a copy, not an error.
warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")


class DataError(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Data: dsl run's names, folders and formats. Images are uint8 NHWC, scaled to [0, 1] per batch.

FOLDER_NAMES = {"fashion-mnist": ["fashion-mnist", "fashion_mnist", "FashionMNIST"], "mnist": ["mnist", "MNIST"],
                "cifar10": ["cifar-10", "cifar10", "cifar-10-batches-bin"]}
IDX_FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


def search_folders():
    for f in os.environ.get("CNNDSL_DATA", "").split(":"):
        if f:
            yield f
    yield os.path.join(os.path.expanduser("~"), ".cache", "cnndsl")
    yield "/usr/share/datasets"


def _find(folder, name):
    for f in (name + ".gz", name):
        if os.path.isfile(os.path.join(folder, f)):
            return os.path.join(folder, f)
    return None


def _read(path):
    with (gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")) as f:
        return f.read()


def _idx(path, images):
    data = _read(path)
    magic, count = struct.unpack_from(">ii", data, 0)
    if images:
        if magic != 2051:
            raise DataError("%s: not an IDX image file (magic %d, expected 2051)" % (path, magic))
        rows, cols = struct.unpack_from(">ii", data, 8)
        if len(data) != 16 + count * rows * cols:
            raise DataError("%s: %d bytes, the header says %d" % (path, len(data), 16 + count * rows * cols))
        return torch.frombuffer(bytearray(data[16:]), dtype=torch.uint8).reshape(count, rows, cols, 1)
    if magic != 2049 or len(data) != 8 + count:
        raise DataError("%s: not an IDX label file of %d labels" % (path, count))
    return torch.frombuffer(bytearray(data[8:]), dtype=torch.uint8).to(torch.int64)


def _cifar(paths):
    xs, ys = [], []
    for p in paths:
        data = torch.frombuffer(bytearray(_read(p)), dtype=torch.uint8).reshape(-1, 3073)
        ys.append(data[:, 0].to(torch.int64))
        xs.append(data[:, 1:].reshape(-1, 3, 32, 32).permute(0, 2, 3, 1).contiguous())
    return torch.cat(xs), torch.cat(ys)


def _hold_out(x, y):
    """dsl's rule for a set with no test part: every tenth example (index % 10 == 9) is the test set."""
    test = torch.arange(len(y)) % 10 == 9
    return x[~test], y[~test], x[test], y[test]


def _csv(path):
    with open(path) as f:
        lines = [l.strip() for l in f if l.strip()]
    rows = [l.split(",") for l in lines if not l.startswith("label")]  # Kaggle's header: label,pixel0,...
    values = torch.tensor([[int(v) for v in r] for r in rows], dtype=torch.int64)
    side = int(round(math.sqrt(values.shape[1] - 1)))
    return _hold_out(values[:, 1:].to(torch.uint8).reshape(-1, side, side, 1), values[:, 0])


IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


def _has_images(folder):
    return any(os.path.isdir(os.path.join(folder, d)) and any(f.lower().endswith(IMAGE_EXTENSIONS) for f in os.listdir(os.path.join(folder, d)))
               for d in os.listdir(folder))


def _images(folder, classes=None, like=None):
    """dsl's image folders: a folder per class (sorted by name), its images sorted by name, every one
    of the first's size; alpha is dropped; after the first training image, the others take its channels."""
    try:
        from PIL import Image
    except ImportError:
        raise DataError("%s: reading image folders needs Pillow (apt-get install python3-pil)" % folder)
    classes = classes or sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
    xs, ys, shape = [], [], like
    for label, name in enumerate(classes):
        d = os.path.join(folder, name)
        files = sorted(f for f in os.listdir(d) if f.lower().endswith(IMAGE_EXTENSIONS)) if os.path.isdir(d) else []
        if not files:
            raise DataError("%s: the class folder has no images (png, jpg, bmp, gif)" % d)
        for f in files:
            image = Image.open(os.path.join(d, f))
            if shape is not None and like is None:
                image = image.convert("L" if shape[2] == 1 else "RGB")
            elif image.mode not in ("L", "RGB"):
                image = image.convert("L" if image.mode in ("LA", "I", "I;16", "1") else "RGB")
            pixels = torch.tensor(bytearray(image.tobytes()), dtype=torch.uint8).reshape(image.height, image.width, -1)
            if shape is None:
                shape = tuple(pixels.shape)
            if tuple(pixels.shape) != shape:
                raise DataError("%s: is %s, but the %s images are %s; resize the images to one size" % (
                    os.path.join(d, f), "x".join(map(str, pixels.shape)), "training" if like else "first", "x".join(map(str, shape))))
            xs.append(pixels)
            ys.append(label)
    return torch.stack(xs), torch.tensor(ys, dtype=torch.int64), classes


def _folder(folder):
    idx = [_find(folder, f) for f in IDX_FILES]
    if all(idx):
        return _idx(idx[0], True), _idx(idx[1], False), _idx(idx[2], True), _idx(idx[3], False)
    batches = [_find(folder, "data_batch_%d.bin" % i) for i in range(1, 6)]
    test = _find(folder, "test_batch.bin")
    if all(batches) and test:
        return _cifar(batches) + _cifar([test])
    train, test = os.path.join(folder, "train"), os.path.join(folder, "test")
    if os.path.isdir(train) and os.path.isdir(test) and _has_images(train):
        x, y, classes = _images(train)
        tx, ty, _ = _images(test, classes, like=tuple(x.shape[1:]))
        return x, y, tx, ty
    if _has_images(folder):
        x, y, _ = _images(folder)
        return _hold_out(x, y)
    raise DataError("%s: holds neither the four IDX files, nor CIFAR-10's binary batches, nor a folder of images per class" % folder)


def shapes(count, seed, height=16, width=16, channels=1):
    """dsl's generated set (DataSets.Shapes), draw for draw: grey images of a horizontal bar, a
    vertical bar or a square at random places, with noise."""
    side = min(height, width)
    length, margin = max(1, side * 5 // 16), max(0, side * 2 // 16)
    thick = max(1, length // 5)
    rng = DotNetRandom(seed)
    pixels = bytearray(count * height * width)
    labels = []
    for n in range(count):
        label = rng.next(0, 3)
        x0 = rng.next(margin, max(margin + 1, width - margin - length + 1))
        y0 = rng.next(margin, max(margin + 1, height - margin - length + 1))
        labels.append(label)
        base = n * height * width
        for i in range(height * width):
            pixels[base + i] = rng.next(0, 40)
        for d in range(length):
            for e in range(length if label == 2 else thick):
                y, x = (y0 + e, x0 + d) if label == 0 else (y0 + d, x0 + e)
                if y < height and x < width:
                    pixels[base + y * width + x] = 200 + rng.next(0, 55)
    x = torch.frombuffer(pixels, dtype=torch.uint8).reshape(count, height, width, 1).expand(count, height, width, channels)
    return x.contiguous(), torch.tensor(labels, dtype=torch.int64)


def load_data(name, shape=None):
    """(training images, labels, test images, labels); `shape`: the model's input (h, w, c), the
    size `shapes` is made at (16x16x1 without one)."""
    key = name.strip().lower()
    if key == "shapes":
        h, w, c = shape if shape and len(shape) == 3 and None not in shape else (16, 16, shape[2] if shape and len(shape) == 3 else 1)
        return shapes(2000, 1, h, w, c) + shapes(500, 2, h, w, c)
    if key == "xor":
        x = torch.tensor([[0, 0], [0, 255], [255, 0], [255, 255]], dtype=torch.uint8).reshape(4, 1, 1, 2)
        y = torch.tensor([0, 1, 1, 0])
        return x, y, x, y
    if os.path.isdir(name):
        return _folder(name)
    if os.path.isfile(name) and name.lower().endswith(".csv"):
        return _csv(name)
    if key not in FOLDER_NAMES:
        raise DataError("%s: no such folder or .csv file, and not a known data set; use fashion-mnist, mnist, cifar10, xor, "
                        "shapes, a .csv file, or a folder holding IDX files, CIFAR-10 binary batches or a folder of images per class" % name)
    tried = []
    for root in search_folders():
        for f in FOLDER_NAMES[key]:
            folder = os.path.join(root, f)
            tried.append(folder)
            if os.path.isdir(folder):
                return _folder(folder)
    raise DataError("%s: data set not found; looked in %s" % (name, ", ".join(tried)))


def batch_of(x, indices, device):
    # as dsl's Dataset: bytes times 1/255 in float32, NHWC (a vector model reads each example flat)
    batch = x[indices].to(device=device, dtype=torch.float32) * torch.tensor(1.0 / 255, dtype=torch.float32)
    if len(generated.INPUT_SHAPE) == 1:
        batch = batch.reshape(len(indices), -1)
    return batch.contiguous()


# ---------------------------------------------------------------------------------------------

def settings(args):
    t = generated.TRAINING
    name = args.optimizer or (t["optimizer"] or {"name": "rmsprop"})["name"]
    opt = dict(t["optimizer"]) if t["optimizer"] and t["optimizer"]["name"] == name else dict(DEFAULTS[name])
    if args.lr is not None:
        opt["lr"] = args.lr
    pick = lambda a, k, d: a if a is not None else (t[k] if t[k] is not None else d)
    return {"optimizer": opt, "loss": t["loss"] or "crossentropy", "epochs": pick(args.epochs, "epochs", 1),
            "batch": pick(args.batch, "batch", 32), "validation": pick(args.validation, "validation", 0.0),
            "seed": pick(args.seed, "seed", 0), "weight_decay": t["weight_decay"] or 0.0, "data": args.data or t["data"],
            "schedule": t["schedule"], "early_stopping": t["early_stopping"],
            "warmup": t.get("warmup") or 0, "label_smoothing": t.get("label_smoothing") or 0.0}


def step_factor(sched, warmup_steps, t, total):
    """dsl run's Schedules.StepFactor: the per-step factor of the rate at step t of `total`."""
    if sched and sched["name"] == "onecycle":
        initial = 1 / 25.0
        final, peak, last = initial / 1e4, sched["pct_start"] * total - 1, total - 1

        def anneal(a, b, pct):
            return (b - a) * pct + a if sched["linear"] else b + (a - b) / 2 * (math.cos(math.pi * pct) + 1)
        if t <= peak:
            return anneal(initial, 1, 1 if peak <= 0 else t / peak)
        return anneal(1, final, 1 if last - peak <= 0 else min(1, (t - peak) / (last - peak)))
    if warmup_steps > 0 and t < warmup_steps:
        return (t + 1) / warmup_steps
    if sched and sched["name"] == "cosine":
        steps = total - warmup_steps
        return 1 if steps <= 0 else 0.5 * (1 + math.cos(math.pi * min(t - warmup_steps, steps) / steps))
    return 1


def evaluate(net, x, y, s, device, classes, fused):
    net.eval()
    loss_sum, correct = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(y), s["batch"]):
            idx = torch.arange(start, min(start + s["batch"], len(y)))
            out = net(batch_of(x, idx, device), logits=fused)
            labels = y[idx].to(device)
            loss_sum += loss_value(s["loss"], out, labels, classes, fused, s["label_smoothing"]).item() * len(idx)
            correct += (predict(out, fused) == labels).sum().item()
    net.train()
    return loss_sum / len(y), correct / len(y)


def worker(rank, world, args):
    distributed = world > 1
    cuda = args.device == "cuda"
    local = int(os.environ.get("LOCAL_RANK", rank))
    if distributed:
        dist.init_process_group("nccl" if cuda else "gloo", rank=rank, world_size=world)
    if cuda:
        torch.cuda.set_device(local)
    elif distributed:
        # the machine's cores shared by its processes
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", world))))
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    s = settings(args)
    if generated.TRAINING.get("ema") or generated.TRAINING.get("tta"):
        print("train.py: note: the train section's ema and tta are dsl run's alone; this script trains and evaluates without them",
              file=sys.stderr, flush=True)
    torch.manual_seed(s["seed"])
    net = generated.Model().to(device)
    keys = {key: name for name, key, _, _ in generated.TENSORS}
    start_epoch, best, steps = 0, -math.inf, 0
    best_loss, stale = math.inf, 0  # the monitored loss's best and the epochs since (plateau, early stopping)
    weights = args.weights or (os.path.join(HERE, "weights.ckpt") if os.path.isfile(os.path.join(HERE, "weights.ckpt")) else None)
    resume = os.path.join(args.out, "last.pt")
    optimizer = KerasOptimizer(s["optimizer"], [(keys[k], p) for k, p in net.named_parameters()], s["weight_decay"])
    if args.resume:
        if not os.path.isfile(resume):
            raise SystemExit("train.py: %s: no run to resume; start one without --resume" % resume)
        state = torch.load(resume, map_location=device)
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, best = state["epoch"], state["best"]
        best_loss, stale = state.get("best_loss", math.inf), state.get("stale", 0)
    elif weights:
        try:
            if not load_dsl_checkpoint(net, weights, generated.TENSORS, generated.ARCHITECTURE_HASH) and rank == 0:
                print("train.py: %s was saved from another architecture; its tensors fit, so they are used" % weights, file=sys.stderr)
        except (CheckpointError, OSError) as e:
            raise SystemExit("train.py: %s" % e)
    ddp = DistributedDataParallel(net, device_ids=[local] if cuda else None) if distributed else net

    if not s["data"]:
        raise SystemExit("train.py: the model's train section names no data set; give --data NAME|FOLDER")
    try:
        train_x, train_y, test_x, test_y = load_data(s["data"], generated.INPUT_SHAPE)
    except DataError as e:
        raise SystemExit("train.py: %s" % e)
    if args.limit:
        train_x, train_y = train_x[:args.limit], train_y[:args.limit]
        test_x, test_y = test_x[:max(1, args.limit // 5)], test_y[:max(1, args.limit // 5)]
    held = int(round(len(train_y) * s["validation"]))
    val_x, val_y = train_x[len(train_y) - held:], train_y[len(train_y) - held:]
    train_x, train_y = train_x[:len(train_y) - held], train_y[:len(train_y) - held]
    classes = generated.OUTPUT_SHAPE[-1]
    fused = fused_loss(s["loss"], classes, generated.OUTPUT_ACTIVATION)
    shape = tuple(train_x.shape[1:])
    wanted = generated.INPUT_SHAPE
    fits = math.prod(shape) == wanted[0] if len(wanted) == 1 else \
        shape[2] == wanted[2] and all(w is None or w == d for w, d in zip(wanted[:2], shape[:2]))
    if not fits:
        raise SystemExit("train.py: the data's examples are %s, the model reads %s" % (
            "x".join(map(str, shape)), "x".join("?" if d is None else str(d) for d in wanted)))

    if hasattr(net, "normalize_mean") and not args.resume and not weights:
        # the train section's normalize: the training part's per-channel mean and deviation, as dsl run's
        pixels = train_x.to(torch.float64).reshape(-1, train_x.shape[-1]) * (1.0 / 255)
        mean, deviation = pixels.mean(0), pixels.std(0, unbiased=False)
        with torch.no_grad():
            net.normalize_mean.copy_(mean.to(torch.float32))
            net.normalize_deviation.copy_(torch.where(deviation > 0, deviation, torch.ones_like(deviation)).to(torch.float32))

    # Every process draws dsl run's permutation of the epoch and takes its share of each global batch.
    sampler = EpochSampler(len(train_y), s["batch"], world, rank, s["seed"])
    if rank == 0:
        os.makedirs(args.out, exist_ok=True)
        print("%s: %d training examples%s, %s, %d process%s on %s" % (
            generated.MODEL_NAME, len(train_y), ", %d validation" % held if held else "", s["optimizer"]["name"],
            world, "es" if world > 1 else "", args.device), flush=True)
    epoch_scale = optimizer.lr_scale
    for epoch in range(start_epoch, s["epochs"]):
        sched = s["schedule"]
        if sched and sched["name"] == "step":
            epoch_scale = sched["factor"] ** (epoch // sched["every"])
        elif not (sched and sched["name"] == "plateau"):
            epoch_scale = 1.0
        batches = (len(train_y) + s["batch"] - 1) // s["batch"]
        sampler.set_epoch(epoch)
        clock = time.time()
        totals = torch.zeros(3, dtype=torch.float64)
        for b, (mine, size) in enumerate(sampler.batches()):
            optimizer.lr_scale = epoch_scale * step_factor(sched, s["warmup"] * batches, epoch * batches + b, s["epochs"] * batches)
            # A process with no part of a short last batch still takes the step (DDP's all-reduce
            # needs every process) on one example whose loss counts for nothing.
            idx = torch.tensor(mine or [0], dtype=torch.int64)
            x, labels = batch_of(train_x, idx, device), train_y[idx].to(device)
            # this process's examples are places rank, rank + world, ... of the global batch
            x = augment(x, generated.TRAINING["augment"], s["seed"], optimizer.step_count, range(rank, rank + world * len(idx), world))
            out = ddp(x, logits=fused)
            mean = loss_value(s["loss"], out, labels, classes, fused, s["label_smoothing"])
            # DDP averages the processes' gradients: weighted so that the result is the global
            # batch's mean, however unevenly a short batch is split
            loss = mean * (len(mine) * world / size)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps += 1
            if mine:
                totals += torch.tensor([mean.item() * len(mine), (predict(out.detach(), fused) == labels).sum().item(), len(mine)], dtype=torch.float64)
        if distributed:
            dist.all_reduce(totals)
        seconds = time.time() - clock
        loss_mean, accuracy = (totals[0] / totals[2]).item(), (totals[1] / totals[2]).item()
        line = "Epoch %d/%d - %.1fs - %s img/s - loss: %.4f - accuracy: %.4f" % (
            epoch + 1, s["epochs"], seconds, "{:,}".format(int(totals[2].item() / seconds)), loss_mean, accuracy)
        monitored, score = loss_mean, accuracy
        if held:
            val_loss, val_accuracy = evaluate(net, val_x, val_y, s, device, classes, fused)
            line += " - val_loss: %.4f - val_accuracy: %.4f" % (val_loss, val_accuracy)
            monitored, score = val_loss, val_accuracy
        if monitored < best_loss:
            best_loss, stale = monitored, 0
        else:
            stale += 1
        if sched and sched["name"] == "plateau" and stale > 0 and stale % sched["patience"] == 0:
            epoch_scale *= sched["factor"]
        optimizer.lr_scale = epoch_scale  # the checkpoint keeps the per-epoch part (dsl run's LearningRateScale)
        better = score > best
        best = max(best, score)
        if rank == 0:
            print(line, flush=True)
            position = dict(epoch=epoch + 1, steps=optimizer.step_count, best=best, batch_size=s["batch"],
                            optimizer=s["optimizer"]["name"], seed=s["seed"], examples=len(train_y))
            tensors = dsl_tensors(net, generated.TENSORS)
            write_checkpoint(os.path.join(args.out, "last.ckpt"), generated.ARCHITECTURE_HASH, tensors, **position)
            if better:
                write_checkpoint(os.path.join(args.out, "best.ckpt"), generated.ARCHITECTURE_HASH, tensors, **position)
            torch.save({"model": net.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch + 1, "best": best,
                        "best_loss": best_loss, "stale": stale}, resume + ".tmp")
            os.replace(resume + ".tmp", resume)
        if s["early_stopping"] and stale >= s["early_stopping"]:
            if rank == 0:
                print("early stopping after epoch %d" % (epoch + 1), flush=True)
            break
    if rank == 0:
        test_loss, test_accuracy = evaluate(net, test_x, test_y, s, device, classes, fused)
        print("test loss: %.4f - test accuracy: %.4f (%d examples)" % (test_loss, test_accuracy, len(test_y)), flush=True)
        print("wrote %s" % os.path.join(args.out, "last.ckpt"), flush=True)
    if distributed:
        dist.barrier()
        dist.destroy_process_group()


def _spawned(index, world, args):
    os.environ["LOCAL_RANK"] = str(index)
    worker(index, world, args)


def parse(argv):
    p = argparse.ArgumentParser(description="Train %s as `dsl run` would, on PyTorch." % generated.MODEL_NAME)
    p.add_argument("--data", help="data set name (fashion-mnist, mnist, cifar10, xor), folder or .csv file")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch", type=int, help="the global batch, split evenly across processes")
    p.add_argument("--lr", type=float)
    p.add_argument("--optimizer", choices=["adam", "adamw", "sgd", "rmsprop"])
    p.add_argument("--seed", type=int)
    p.add_argument("--validation", type=float, help="the fraction of the training set held out (its end)")
    p.add_argument("--limit", type=int, help="the first N training examples and the first N/5 test examples")
    p.add_argument("--weights", help="a dsl checkpoint to start from (default: weights.ckpt beside train.py, if any)")
    p.add_argument("--out", default="run", help="folder for last.ckpt, best.ckpt and last.pt (default: run)")
    p.add_argument("--resume", action="store_true", help="continue OUT/last.pt")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--nproc", type=int, default=1, help="processes to spawn on this machine (DistributedDataParallel)")
    p.add_argument("--port", type=int, default=29500, help="MASTER_PORT for --nproc (on 127.0.0.1)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse(argv)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if args.nproc > 1:
        if world > 1:
            raise SystemExit("train.py: --nproc spawns the processes itself; a launcher already set WORLD_SIZE=%d" % world)
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ["MASTER_PORT"] = str(args.port)
        os.environ["LOCAL_WORLD_SIZE"] = str(args.nproc)
        mp.spawn(_spawned, args=(args.nproc, args), nprocs=args.nproc, join=True)
    else:
        worker(int(os.environ.get("RANK", "0")), world, args)


if __name__ == "__main__":
    main()
