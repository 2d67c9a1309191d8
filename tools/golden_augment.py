#!/usr/bin/env python3
"""Writes tests/data/golden/augment.safetensors: torchvision 0.14's functional transforms applied
with given parameters to a few small seeded u8 images, one case per transform plus whole chains.
tests/ssl/test_augment.cpp applies ours with the same parameters and matches pixel by pixel.

Every case starts from the float image u8 / 255 (CHW) and runs, in this order:
    F.resized_crop(img, top, left, h, w, [out_h, out_w], BILINEAR, antialias=False)
    the jitter ops in the given order (F.adjust_brightness/contrast/saturation/hue)
    F.rgb_to_grayscale(img, num_output_channels=C)                     if gray
    F.gaussian_blur(img, [2r+1, 2r+1], [sigma, sigma])                 if blur
    F.hflip(img)                                                       if flip
    F.normalize(img, mean, std)
For 1-channel images with gray_to_rgb the image is first repeated to 3 channels; without it the
ops that need colour are skipped, as torchvision's ColorJitter/RandomGrayscale skip them.

Tensors: rgb_images u8 [3, 20, 24, 3], gray_images u8 [1, 20, 24, 1], and per case NN:
case_NN_params f64 [29] (layout in PARAM_FIELDS) and case_NN_out f32 [C, out_h, out_w].
Run with Debian's python3-torch:  /usr/bin/python3 tools/golden_augment.py
"""
import os
import sys

import numpy as np
import torch
import torchvision.transforms.functional as F
from torchvision.transforms import InterpolationMode

sys.path.insert(0, os.path.dirname(__file__))
from torchvision_to_safetensors import save_safetensors  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "golden", "augment.safetensors")
H, W = 20, 24
PARAM_FIELDS = ["gray_set", "image", "top", "left", "h", "w", "out_h", "out_w", "n_ops", "op0", "op1", "op2", "op3",
                "brightness", "contrast", "saturation", "hue", "gray", "sigma", "radius", "flip",
                "mean0", "mean1", "mean2", "std0", "std1", "std2", "gray_to_rgb", "reserved"]


def f32(x):
    """Parameters are float32 values, as our ViewParams holds them."""
    return float(np.float32(x))


def make_images(rng):
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    rgb = []
    for k in range(3):
        base = np.stack([128 + 100 * np.sin(xx / (3 + k) + c) * np.cos(yy / (4 + c)) for c in range(3)], -1)
        img = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).round().astype(np.uint8)
        # Pixels that exercise the HSV edge cases: gray (max == min), ties of the max, black, white.
        img[0, :4] = [[90, 90, 90], [200, 200, 30], [30, 200, 200], [0, 0, 0]]
        img[1, :4] = [[255, 255, 255], [255, 0, 0], [200, 30, 200], [10, 250, 10]]
        rgb.append(img)
    gray = np.clip(128 + 90 * np.sin(xx / 4) * np.cos(yy / 5) + rng.normal(0, 15, (H, W)), 0, 255)
    return np.stack(rgb), gray.round().astype(np.uint8)[None, :, :, None]


def reference(img_u8, p):
    img = torch.from_numpy(img_u8).permute(2, 0, 1).float() / 255.0
    if img.shape[0] == 1 and p["gray_to_rgb"]:
        img = img.repeat(3, 1, 1)
    c = img.shape[0]
    img = F.resized_crop(img, p["top"], p["left"], p["h"], p["w"], [p["out_h"], p["out_w"]],
                         InterpolationMode.BILINEAR, antialias=False)
    for op in p["ops"]:
        if op == 0:
            img = F.adjust_brightness(img, p["brightness"])
        elif op == 1:
            img = F.adjust_contrast(img, p["contrast"])
        elif op == 2:
            img = F.adjust_saturation(img, p["saturation"])
        elif op == 3:
            img = F.adjust_hue(img, p["hue"])
    if p["gray"]:
        img = F.rgb_to_grayscale(img, num_output_channels=c)
    if p["sigma"] > 0:
        k = 2 * p["radius"] + 1
        img = F.gaussian_blur(img, [k, k], [p["sigma"], p["sigma"]])
    if p["flip"]:
        img = F.hflip(img)
    return F.normalize(img, p["mean"][:c], p["std"][:c])


def case(**kw):
    p = dict(gray_set=0, image=0, top=0, left=0, h=H, w=W, out_h=H, out_w=W, ops=[], brightness=1.0, contrast=1.0,
             saturation=1.0, hue=0.0, gray=0, sigma=0.0, radius=0, flip=0, mean=[0.0, 0.0, 0.0],
             std=[1.0, 1.0, 1.0], gray_to_rgb=0)
    p.update(kw)
    for k in ("brightness", "contrast", "saturation", "hue", "sigma"):
        p[k] = f32(p[k])
    p["mean"] = [f32(v) for v in p["mean"]]
    p["std"] = [f32(v) for v in p["std"]]
    if p["sigma"] > 0 and not p["radius"]:
        p["radius"] = int(np.ceil(3 * p["sigma"]))
    return p


def cases():
    norm = dict(mean=[0.52, 0.47, 0.41], std=[0.23, 0.21, 0.25])
    return [
        case(top=3, left=5, h=11, w=14, out_h=16, out_w=16),              # upsampling crop
        case(image=1, out_h=12, out_w=10),                                # downsampling, no antialias
        case(image=2, top=1, left=2, h=17, w=13, out_h=17, out_w=29),     # mixed
        case(image=0),                                                    # identity resize
        case(image=1, ops=[0], brightness=1.37),
        case(image=2, ops=[0], brightness=0.62),
        case(image=0, ops=[1], contrast=0.64),
        case(image=1, ops=[1], contrast=1.33),
        case(image=2, ops=[2], saturation=1.38),
        case(image=0, ops=[2], saturation=0.61),
        case(image=1, ops=[3], hue=0.37),
        case(image=2, ops=[3], hue=-0.23),
        case(image=0, ops=[3], hue=-0.4),
        case(image=1, gray=1),
        case(image=2, sigma=0.7),
        case(image=0, sigma=1.93),
        case(image=1, sigma=0.1),
        case(image=2, flip=1),
        case(image=0, **norm),
        # whole chains, the ops in several orders
        case(image=1, top=2, left=4, h=15, w=17, out_h=16, out_w=16, ops=[3, 1, 0, 2], brightness=1.21,
             contrast=0.73, saturation=1.3, hue=0.28, sigma=1.1, flip=1, **norm),
        case(image=2, top=0, left=3, h=19, w=12, out_h=14, out_w=18, ops=[1, 3, 2, 0], brightness=0.83,
             contrast=1.39, saturation=0.66, hue=-0.35, gray=1, sigma=0.45, **norm),
        case(image=0, top=5, left=0, h=10, w=24, out_h=12, out_w=12, ops=[2, 0, 3, 1], brightness=1.05,
             contrast=0.9, saturation=1.12, hue=0.11, flip=1, **norm),
        # grayscale images: saturation, hue and grayscale are no-ops without gray_to_rgb
        case(gray_set=1, top=2, left=3, h=14, w=18, out_h=16, out_w=16, ops=[2, 1, 3, 0], brightness=1.3,
             contrast=0.7, saturation=1.4, hue=0.3, gray=1, sigma=0.9, flip=1, mean=[0.5, 0.5, 0.5],
             std=[0.2, 0.2, 0.2]),
        case(gray_set=1, top=2, left=3, h=14, w=18, out_h=16, out_w=16, ops=[2, 1, 3, 0], brightness=1.3,
             contrast=0.7, saturation=1.4, hue=0.3, gray=1, sigma=0.9, flip=1, mean=[0.5, 0.5, 0.5],
             std=[0.2, 0.2, 0.2], gray_to_rgb=1),
    ]


def main():
    rng = np.random.default_rng(20260605)
    rgb, gray = make_images(rng)
    tensors = {"rgb_images": torch.from_numpy(rgb), "gray_images": torch.from_numpy(gray)}
    for k, p in enumerate(cases()):
        imgs = gray if p["gray_set"] else rgb
        out = reference(imgs[p["image"]], p)
        ops = list(p["ops"]) + [0] * (4 - len(p["ops"]))
        vec = [p["gray_set"], p["image"], p["top"], p["left"], p["h"], p["w"], p["out_h"], p["out_w"], len(p["ops"]),
               *ops, p["brightness"], p["contrast"], p["saturation"], p["hue"], p["gray"], p["sigma"], p["radius"],
               p["flip"], *p["mean"], *p["std"], p["gray_to_rgb"], 0]
        assert len(vec) == len(PARAM_FIELDS)
        tensors["case_%02d_params" % k] = torch.tensor(vec, dtype=torch.float64)
        tensors["case_%02d_out" % k] = out.contiguous()
    save_safetensors(OUT, tensors, {"source": "tools/golden_augment.py", "torchvision": "0.14",
                                    "cases": str(len(cases())), "param_fields": ",".join(PARAM_FIELDS)})
    print("wrote %d cases to %s (%d bytes)" % (len(cases()), OUT, os.path.getsize(OUT)))


if __name__ == "__main__":
    main()
