#!/usr/bin/env python3
"""PyTorch side of bench_kernels' augmentation rows (bench/augment_bench.cpp): torchvision's
version of the MoCo v2 / HPT policy, applied per image to uint8 CHW tensors the way a DataLoader
worker applies a dataset's transform, two views per image, then collated into two float batches.

    RandomResizedCrop(size, scale=(0.2, 1.0), antialias=False)        (tensor path, bilinear)
    RandomApply([ColorJitter(0.4, 0.4, 0.4, 0.4)], p=0.8)
    RandomGrayscale(p=0.2)
    RandomApply([Blur(sigma in U(0.1, 2.0), kernel 2*ceil(3 sigma)+1)], p=0.5)
    RandomHorizontalFlip()
    ConvertImageDtype(float32), Normalize(mean, std)

torchvision's GaussianBlur needs a fixed kernel size; the policy's kernel grows with sigma
(radius ceil(3 sigma)), so Blur draws sigma and calls F.gaussian_blur with that kernel, doing the
same work as ours.

Each case also runs the path of MoCo's reference code (and of most users): PIL images through the
same transforms on PIL, PIL's GaussianBlur(radius=sigma) (three box blurs, cheaper than the exact
kernel ours and the tensor path compute), then ToTensor and Normalize. It was 2x faster than the
tensor path on one core, so the reported peer is the faster of the two ("path" names it; both
times are given).

stdin: {"cases": [{"name", "file", "n", "h", "w", "c", "out", "threads", "min_time"}]}; "file" holds
the u8 NHWC batch. threads = 1: in this process with torch.set_num_threads(1) (one worker's
work). threads > 1: a DataLoader with that many workers (each single-threaded, as DataLoader
sets), persistent, batch_size n, timed per batch at steady state.
Prints one JSON line per case with the median ms per batch.
"""
import json
import math
import sys

import numpy as np
import torch
import torchvision
import torchvision.transforms as T
import torchvision.transforms.functional as F

import peer_setup  # tools/, beside this script


class Blur(torch.nn.Module):
    def __init__(self, sigma_min=0.1, sigma_max=2.0):
        super().__init__()
        self.sigma_min, self.sigma_max = sigma_min, sigma_max

    def forward(self, img):
        sigma = torch.empty(1).uniform_(self.sigma_min, self.sigma_max).item()
        k = 2 * math.ceil(3 * sigma) + 1
        return F.gaussian_blur(img, [k, k], [sigma, sigma])


def policy(out, mean, std):
    return T.Compose([
        T.RandomResizedCrop(out, scale=(0.2, 1.0), antialias=False),
        T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.4)], p=0.8),
        T.RandomGrayscale(p=0.2),
        T.RandomApply([Blur()], p=0.5),
        T.RandomHorizontalFlip(),
        T.ConvertImageDtype(torch.float32),
        T.Normalize(mean, std),
    ])


class PilBlur:
    """MoCo v2's reference blur: sigma in U(0.1, 2.0), PIL's GaussianBlur with that radius."""

    def __init__(self, sigma_min=0.1, sigma_max=2.0):
        self.sigma_min, self.sigma_max = sigma_min, sigma_max

    def __call__(self, img):
        from PIL import ImageFilter
        return img.filter(ImageFilter.GaussianBlur(radius=torch.empty(1).uniform_(self.sigma_min, self.sigma_max).item()))


def pil_policy(out, mean, std):
    return T.Compose([
        T.RandomResizedCrop(out, scale=(0.2, 1.0)),
        T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.4)], p=0.8),
        T.RandomGrayscale(p=0.2),
        T.RandomApply([PilBlur()], p=0.5),
        T.RandomHorizontalFlip(),
        T.ToTensor(),
        T.Normalize(mean, std),
    ])


class TwoViews(torch.utils.data.Dataset):
    def __init__(self, images, transform):
        self.images, self.transform = images, transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        img = self.images[i]
        return self.transform(img), self.transform(img)


def load(case):
    raw = np.fromfile(case["file"], dtype=np.uint8).reshape(case["n"], case["h"], case["w"], case["c"])
    imgs = torch.from_numpy(raw).permute(0, 3, 1, 2).contiguous()  # u8 NCHW, one CHW tensor per image
    f = imgs.float() / 255
    mean = f.mean((0, 2, 3)).tolist()
    std = f.std((0, 2, 3), unbiased=False).tolist()
    return imgs, mean, std


def run_case(case, path):
    imgs, mean, std = load(case)
    if path == "pil":
        from PIL import Image
        hwc = imgs.permute(0, 2, 3, 1).numpy()
        ds = TwoViews([Image.fromarray(hwc[i]) for i in range(len(hwc))], pil_policy(case["out"], mean, std))
    else:
        ds = TwoViews([imgs[i] for i in range(len(imgs))], policy(case["out"], mean, std))
    if case["threads"] <= 1:
        torch.set_num_threads(1)

        def batch():
            pairs = [ds[i] for i in range(len(ds))]
            torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])

        ms, _, reps, cpu_ms = peer_setup.time_wall(batch, case["min_time"], warmup=1, min_reps=3, max_reps=200)
        return ms, reps, cpu_ms
    # A DataLoader hands whole batches to workers, so an "epoch" of one batch per worker keeps
    # every worker busy; time per batch = epoch time / batches. One, not more: a 224x224 batch
    # takes a worker several seconds, and the device tool's machine (16 workers) runs this phase
    # under a time limit.
    batches = case["threads"]
    loader = torch.utils.data.DataLoader(torch.utils.data.ConcatDataset([ds] * batches), batch_size=len(ds),
                                         num_workers=case["threads"], shuffle=False, persistent_workers=True,
                                         prefetch_factor=2)

    def epoch():
        for _ in loader:
            pass

    ms, _, reps, _ = peer_setup.time_wall(epoch, case["min_time"], warmup=1, min_reps=2, max_reps=200)
    return ms / batches, reps, None  # the work runs in worker processes: no CPU time here


def main():
    req = json.load(sys.stdin)
    for case in req["cases"]:
        runs = {path: run_case(case, path) for path in ("tensor", "pil")}
        best = min(runs, key=lambda p: runs[p][0])
        ms, reps, cpu_ms = runs[best]
        print(json.dumps({"name": case["name"], "ms": ms, "reps": reps, "cpu_ms": cpu_ms, "path": best,
                          "tensor_ms": runs["tensor"][0], "pil_ms": runs["pil"][0], "torch": torch.__version__,
                          "torchvision": torchvision.__version__}), flush=True)


if __name__ == "__main__":
    main()
