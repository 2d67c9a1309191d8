#!/usr/bin/env python3
"""PyTorch side of bench_step: one MoCo v2 training step the way the reference implementation
(facebookresearch/moco, single process) runs it, timed on the configurations read from stdin.

Per step: q = normalize(encoder_q(im_q)); momentum update of encoder_k by a loop over parameter
pairs; k = normalize(encoder_k(im_k[shuffle]))[unshuffle] without grad; logits from einsum and
cat; cross-entropy; backward; SGD(momentum 0.9, weight decay 1e-4) step; enqueue.
Inputs are random tensors (augmentation is benchmarked separately), as on our side.
"""
import json

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

import peer_setup  # tools/, beside this script


def encoder(depth, small_stem, proj):
    m = getattr(torchvision.models, "resnet%d" % depth)()
    if small_stem:
        m.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        m.maxpool = nn.Identity()
    dim = m.fc.in_features
    m.fc = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, proj))
    return m


class MoCo(nn.Module):
    def __init__(self, depth, small_stem, K, m=0.999, T=0.2, proj=128):
        super().__init__()
        self.K, self.m, self.T = K, m, T
        self.encoder_q = encoder(depth, small_stem, proj)
        self.encoder_k = encoder(depth, small_stem, proj)
        for pq, pk in zip(self.encoder_q.parameters(), self.encoder_k.parameters()):
            pk.data.copy_(pq.data)
            pk.requires_grad = False
        self.register_buffer("queue", F.normalize(torch.randn(proj, K), dim=0))
        self.ptr = 0

    def forward(self, im_q, im_k):
        q = F.normalize(self.encoder_q(im_q), dim=1)
        with torch.no_grad():
            # PyTorch's multi-tensor ops, not the reference code's per-tensor loop: on a GPU that
            # loop's 64 launches (44 us each on the H100) sat on a launch-bound step's critical path.
            qs, ks = list(self.encoder_q.parameters()), list(self.encoder_k.parameters())
            if hasattr(torch, "_foreach_lerp_"):
                torch._foreach_lerp_(ks, qs, 1.0 - self.m)
            else:
                torch._foreach_mul_(ks, self.m)
                torch._foreach_add_(ks, qs, alpha=1.0 - self.m)
            idx = torch.randperm(im_k.shape[0], device=im_k.device)
            k = F.normalize(self.encoder_k(im_k[idx]), dim=1)[torch.argsort(idx)]
        l_pos = torch.einsum("nc,nc->n", [q, k]).unsqueeze(-1)
        l_neg = torch.einsum("nc,ck->nk", [q, self.queue.clone().detach()])
        logits = torch.cat([l_pos, l_neg], dim=1) / self.T
        labels = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
        return F.cross_entropy(logits, labels), k

    @torch.no_grad()
    def enqueue(self, k):
        n = k.shape[0]
        self.queue[:, self.ptr:self.ptr + n] = k.T
        self.ptr = (self.ptr + n) % self.K


def main():
    args = peer_setup.parse_args(__doc__, 5.0)
    dev, peer = peer_setup.setup(args.device, args.threads, args.tf32)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    current, step = None, None
    for c in peer_setup.cases(args):
        if c["shape"] != current:  # a served configuration is timed in several rounds: build it once
            step = None
            torch.manual_seed(0)
            model = MoCo(c["depth"], c["small_stem"], c["queue"]).to(dev).train()
            opt = torch.optim.SGD(model.encoder_q.parameters(), lr=0.03, momentum=0.9, weight_decay=1e-4)
            x1 = torch.randn(c["batch"], 3, c["image"], c["image"], device=dev)
            x2 = torch.randn(c["batch"], 3, c["image"], c["image"], device=dev)

            def step(model=model, opt=opt, x1=x1, x2=x2):
                loss, k = model(x1, x2)
                opt.zero_grad()
                loss.backward()
                opt.step()
                model.enqueue(k)
                sync()

            warmup, current = c["warmup"], c["shape"]
        else:
            warmup = 0  # a later round of the same configuration
        ms, _, reps, _ = peer_setup.time_wall(step, c.get("min_time", args.min_time), warmup, c["min_reps"], 200)
        print(json.dumps({"bench": "moco_step", "shape": c["shape"], "ms": ms, "reps": reps,
                          "images_per_s": c["batch"] * 1e3 / ms, "peer": peer}), flush=True)


if __name__ == "__main__":
    main()
