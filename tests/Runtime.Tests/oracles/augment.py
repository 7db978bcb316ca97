#!/usr/bin/python3
"""Reference crops and cutouts for AugmentationTests, by numpy and by DeVries and Taylor's code.

Reads {"cases": [{"image": H x W x C nested lists, "op": "crop" | "cutout", "pad", "mode",
"oy", "ox"} or {"size", "cy", "cx"}]} as JSON on stdin; prints {"results": [flattened image]}.
crop: torchvision's RandomCrop(padding=pad, padding_mode=mode) at a chosen offset, written as
numpy's pad (constant zeros, or 'reflect', which does not repeat the edge; torch's
'reflect' is the same) and the window [oy:oy+H, ox:ox+W]. cutout: the mask of DeVries and
Taylor's Cutout class (github.com/uoguelph-mlrg/Cutout, util/cutout.py) at a chosen centre.
"""
import json
import sys

import numpy as np


def crop(image, pad, mode, oy, ox):
    h, w, _ = image.shape
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="constant" if mode == "zero" else "reflect")
    return padded[oy:oy + h, ox:ox + w, :]


def cutout(image, length, y, x):
    # their Cutout.__call__, with the centre given instead of drawn
    h, w = image.shape[0], image.shape[1]
    mask = np.ones((h, w), np.float32)
    y1 = np.clip(y - length // 2, 0, h)
    y2 = np.clip(y + length // 2, 0, h)
    x1 = np.clip(x - length // 2, 0, w)
    x2 = np.clip(x + length // 2, 0, w)
    mask[y1: y2, x1: x2] = 0.
    return image * mask[:, :, None]


def run(case):
    image = np.array(case["image"], dtype=np.float32)
    if case["op"] == "crop":
        out = crop(image, case["pad"], case["mode"], case["oy"], case["ox"])
    else:
        out = cutout(image, case["size"], case["cy"], case["cx"])
    return out.flatten().tolist()


request = json.load(sys.stdin)
json.dump({"results": [run(c) for c in request["cases"]]}, sys.stdout)
