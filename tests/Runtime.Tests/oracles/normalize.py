#!/usr/bin/python3
"""Reference per-channel statistics for NormalizationTests, by numpy.

Reads {"pixels": [bytes of N x H x W x C images], "shape": [N, H, W, C]} as JSON on stdin; prints
{"mean": [...], "std": [...]}: x.mean(axis=(0, 1, 2)) and x.std(axis=(0, 1, 2)) (numpy's
population deviation, ddof 0, as torchvision recipes compute CIFAR-10's) of x = pixels / 255.
"""
import json
import sys

import numpy as np

request = json.load(sys.stdin)
x = np.array(request["pixels"], dtype=np.float64).reshape(request["shape"]) / 255.0
json.dump({"mean": x.mean(axis=(0, 1, 2)).tolist(), "std": x.std(axis=(0, 1, 2)).tolist()}, sys.stdout)
