#!/usr/bin/env python3
"""Converts a PyTorch/torchvision state dict (a .pth/.pt file, or torchvision's own weights by name)
into a safetensors file that hpt loads directly (same key names, float32 unless --keep-dtype).

    python3 tools/torchvision_to_safetensors.py model.pth out.safetensors
    python3 tools/torchvision_to_safetensors.py --arch resnet18 --random-seed 0 out.safetensors
"""
import argparse
import json
import struct

import torch

DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.bfloat16: "BF16", torch.uint8: "U8",
          torch.int32: "I32", torch.int64: "I64"}


def save_safetensors(path, tensors, metadata=None):
    """The whole format: 8-byte little-endian header size, a JSON header, then the raw bytes."""
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        data = t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="+", help="[state_dict.pth] out.safetensors")
    ap.add_argument("--arch", help="a torchvision model name instead of a .pth file (e.g. resnet50)")
    ap.add_argument("--random-seed", type=int, default=0, help="with --arch: seed of the random init")
    ap.add_argument("--prefix", default="", help="keep only keys starting with this prefix (stripped)")
    ap.add_argument("--keep-dtype", action="store_true", help="do not convert floating tensors to float32")
    args = ap.parse_args()
    if args.arch:
        import torchvision
        torch.manual_seed(args.random_seed)
        sd = getattr(torchvision.models, args.arch)().state_dict()
        out = args.inputs[-1]
    else:
        src, out = args.inputs
        sd = torch.load(src, map_location="cpu")
        sd = sd.get("state_dict", sd)
    sd = {k[len(args.prefix):]: v for k, v in sd.items() if k.startswith(args.prefix)}
    if not args.keep_dtype:
        sd = {k: (v.float() if v.is_floating_point() else v) for k, v in sd.items()}
    save_safetensors(out, sd, {"source": "torchvision_to_safetensors.py"})
    print("wrote %d tensors to %s" % (len(sd), out))


if __name__ == "__main__":
    main()
