#!/usr/bin/env python3
"""Writes tests/data/golden/resnet18_forward.safetensors: a torchvision ResNet-18 whose every
parameter and buffer is filled with seeded Philox uniforms (tools/philox.py), its input batch (also
seeded), and its outputs in eval mode and in train mode (float32, and float64 as the exact reference) (plus two BN layers' running statistics
after the train-mode forward).

The weights themselves are not stored (45 MB): the metadata lists every tensor of the state dict in
torchvision's order with its shape, fill range and CRC-32, and the C++ test regenerates them, checks
the CRCs, writes them as safetensors with torchvision's names and loads that file into our ResNet-18.
A few tensors ARE stored as written by tools/torchvision_to_safetensors.py, to prove that Python-written
files load as they are.

Run with Debian's python3-torch and python3-torchvision:  python3 tools/golden_resnet.py
"""
import json
import os
import sys
import zlib

import numpy as np
import torch
import torchvision

sys.path.insert(0, os.path.dirname(__file__))
from philox import fill_rule, seeded_uniform  # noqa: E402
from torchvision_to_safetensors import save_safetensors  # noqa: E402

SEED = 20260601
OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "golden", "resnet18_forward.safetensors")


def main():
    torch.set_num_threads(1)
    model = torchvision.models.resnet18()
    sd = model.state_dict()
    table = []
    for i, (name, t) in enumerate(sd.items()):
        stream = 1000 + i
        if t.dtype == torch.int64:  # num_batches_tracked
            v = torch.zeros_like(t)
            lo = hi = 0.0
        else:
            lo, hi = fill_rule(name, tuple(t.shape))
            v = torch.from_numpy(seeded_uniform(tuple(t.shape), SEED, stream, lo, hi))
        sd[name] = v
        table.append({"name": name, "shape": list(t.shape), "dtype": str(t.dtype).replace("torch.", ""),
                      "stream": stream, "lo": lo, "hi": hi,
                      "crc32": zlib.crc32(v.contiguous().numpy().tobytes()) & 0xFFFFFFFF})
    model.load_state_dict(sd)
    # The same network in float64: the exact answer that float32 results are judged against
    # (PyTorch's own float32 outputs are stored too, as the peer's error for comparison).
    model64 = torchvision.models.resnet18().double()
    model64.load_state_dict({k: (v.double() if v.is_floating_point() else v) for k, v in sd.items()})
    x = torch.from_numpy(seeded_uniform((4, 3, 64, 64), SEED, 1, -2.0, 2.0))
    outs = {}
    for mode in ("eval", "train"):
        for m, suffix, xin in ((model, "", x), (model64, "_f64", x.double())):
            m.train(mode == "train")
            with torch.no_grad():
                outs["output_" + mode + suffix] = m(xin)
    y_eval, y_train = outs["output_eval"], outs["output_train"]
    tensors = {
        "input": x, "output_eval": y_eval, "output_train": y_train,
        "output_eval_f64": outs["output_eval_f64"], "output_train_f64": outs["output_train_f64"],
        "after_train.bn1.running_mean": model.bn1.running_mean, "after_train.bn1.running_var": model.bn1.running_var,
        "after_train.layer4.1.bn2.running_mean": model.layer4[1].bn2.running_mean,
        "after_train.layer4.1.bn2.running_var": model.layer4[1].bn2.running_var,
        # As the converter writes them (initial values, before the train-mode forward):
        "python_written.fc.bias": sd["fc.bias"], "python_written.bn1.weight": sd["bn1.weight"],
        "python_written.layer1.0.bn1.num_batches_tracked": sd["layer1.0.bn1.num_batches_tracked"],
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    save_safetensors(OUT, tensors, {"seed": SEED, "tensors": json.dumps(table), "torch": torch.__version__,
                                    "torchvision": torchvision.__version__, "script": "tools/golden_resnet.py"})
    print("wrote", os.path.normpath(OUT), os.path.getsize(OUT), "bytes;", len(table), "state-dict tensors")


if __name__ == "__main__":
    main()
