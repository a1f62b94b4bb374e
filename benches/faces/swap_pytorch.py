"""The same swap model and training step as benjamin's (src/faces/model.rs, train.rs), in
PyTorch, for the training benchmark: shared encoder, a decoder per identity with a learned
mask, a PatchGAN per identity, L1 + mask-to-face-region L1 + LSGAN losses, Adam(0.5, 0.999) with the
gradient norm clipped to 10. Trains two identities from folders of aligned faces for SECONDS
and reports steps/s and the SSIM of identity A's held-out faces rebuilt by A's decoder.

    python3 benches/faces/swap_pytorch.py A_DIR B_DIR SECONDS SIZE WIDTH LATENT BATCH [HELDOUT]

The random warp is the same recipe (similarity: +-10 deg, 0.95-1.05, +-5% shift, flips; plus
a 5x5 grid of displacements with a 2% s.d., bilinear) done with grid_sample on the batch.
"""
import glob
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

torch.set_num_threads(int(os.environ.get("THREADS", "2")))
torch.manual_seed(1)
# The GPU when there is one (benches/gpu_check.sh), in full f32 as benjamin trains: no TF32.
DEV = torch.device(os.environ.get("DEVICE", "cuda" if torch.cuda.is_available() else "cpu"))
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False


def leaky(x):
    return F.leaky_relu(x, 0.1)


class Upscale(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.conv = nn.Conv2d(i, o * 4, 3, padding=1)

    def forward(self, x):
        return F.pixel_shuffle(leaky(self.conv(x)), 2)


class Encoder(nn.Module):
    def __init__(self, r, w, latent):
        super().__init__()
        downs = int(math.log2(r // 4))
        convs, c = [], 3
        for i in range(downs):
            convs.append(nn.Conv2d(c, w << i, 5, stride=2, padding=2))
            c = w << i
        self.convs = nn.ModuleList(convs)
        self.top = c
        self.dense1 = nn.Linear(c * 16, latent)
        self.dense2 = nn.Linear(latent, c * 16)
        self.up = Upscale(c, c // 2)

    def forward(self, x):
        x = x * 2 - 1
        for c in self.convs:
            x = leaky(c(x))
        z = self.dense1(x.flatten(1))
        return self.up(self.dense2(z).view(-1, self.top, 4, 4))


class Decoder(nn.Module):
    def __init__(self, r, w, top):
        super().__init__()
        downs = int(math.log2(r // 4))
        ups, c = [], top // 2
        for _ in range(downs - 1):
            o = max(c // 2, w // 2, 4)
            ups.append(Upscale(c, o))
            c = o
        self.ups = nn.ModuleList(ups)
        self.rgb = nn.Conv2d(c, 3, 5, padding=2)
        self.mask = nn.Conv2d(c, 1, 5, padding=2)

    def forward(self, x):
        for u in self.ups:
            x = u(x)
        return torch.sigmoid(self.rgb(x)), torch.sigmoid(self.mask(x))


class PatchGan(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(3 if i == 0 else w << (i - 1), w << i, 4, 2, 1) for i in range(3)])
        self.out = nn.Conv2d(w << 2, 1, 3, padding=1)

    def forward(self, x):
        x = x * 2 - 1
        for c in self.convs:
            x = leaky(c(x))
        return self.out(x)


ARC = [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]]


def face_region(r):
    """benjamin's align::face_region: an ellipse about the alignment template's landmarks."""
    t = [[((x / 112 - 0.5) * 0.9 + 0.5) * r - 0.5, ((y / 112 - 0.5) * 0.9 + 0.47) * r - 0.5] for x, y in ARC]
    cx = (t[0][0] + t[1][0]) / 2
    eye_y, mouth_y = (t[0][1] + t[1][1]) / 2, (t[3][1] + t[4][1]) / 2
    cy = (eye_y + mouth_y) / 2
    rx, ry = (t[1][0] - t[0][0]) * 1.05, (mouth_y - eye_y) * 1.45
    y, x = torch.meshgrid(torch.arange(float(r)), torch.arange(float(r)), indexing="ij")
    d = (((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2).sqrt()
    return ((1 - d) * min(rx, ry) + 0.5).clamp(0, 1)[None, None]


def random_warp(faces):
    n, _, r, _ = faces.shape
    dev = faces.device
    ang = (torch.rand(n, device=dev) * 20 - 10) * math.pi / 180
    sc = torch.rand(n, device=dev) * 0.1 + 0.95
    t = torch.rand(n, 2, device=dev) * 0.2 - 0.1  # +-5% of the side, in [-1, 1] units
    flip = torch.where(torch.rand(n, device=dev) < 0.5, -1.0, 1.0)
    # Output -> input map (inverse of the similarity), as grid_sample wants.
    cos, sin = torch.cos(ang) / sc, torch.sin(ang) / sc
    theta = torch.zeros(n, 2, 3, device=dev)
    theta[:, 0, 0], theta[:, 0, 1] = cos * flip, sin
    theta[:, 1, 0], theta[:, 1, 1] = -sin * flip, cos
    theta[:, :, 2] = -t
    grid = F.affine_grid(theta, (n, 3, r, r), align_corners=True)
    target = F.grid_sample(faces, grid, padding_mode="border", align_corners=True)
    disp = torch.randn(n, 2, 5, 5, device=dev) * 0.02 * 2  # 2% of the side, in [-1, 1] units
    disp = F.interpolate(disp, size=(r, r), mode="bilinear", align_corners=True).permute(0, 2, 3, 1)
    inp = F.grid_sample(faces, grid + disp, padding_mode="border", align_corners=True)
    region = F.grid_sample(face_region(r).to(dev).expand(n, 1, r, r), grid, padding_mode="border", align_corners=True)
    return inp, target, region


def ssim(a, b):
    """Same as benjamin's image::ssim: luma, 11x11 Gaussian (1.5), valid region; a, b (3, R, R) in 0-255."""
    wts = torch.tensor([0.299, 0.587, 0.114], device=a.device).view(3, 1, 1)
    x, y = (a * wts).sum(0)[None, None], (b * wts).sum(0)[None, None]
    g = torch.exp(-torch.arange(-5, 6.0) ** 2 / (2 * 1.5 ** 2))
    g = g / g.sum()
    k = (g[:, None] * g[None, :])[None, None].to(a.device)
    mx, my = F.conv2d(x, k), F.conv2d(y, k)
    vx = F.conv2d(x * x, k) - mx ** 2
    vy = F.conv2d(y * y, k) - my ** 2
    cov = F.conv2d(x * y, k) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    return (((2 * mx * my + c1) * (2 * cov + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))).mean().item()


def load(d):
    files = sorted(glob.glob(os.path.join(d, "*.png")))
    return torch.stack([torch.from_numpy(np.asarray(Image.open(f).convert("RGB"), dtype=np.float32)).permute(2, 0, 1)
                        for f in files]).to(DEV) / 255.0


def main():
    a_dir, b_dir, seconds, r, w, latent, batch = sys.argv[1:8]
    seconds, r, w, latent, batch = float(seconds), int(r), int(w), int(latent), int(batch)
    a, b = load(a_dir), load(b_dir)
    held = int(sys.argv[8]) if len(sys.argv) > 8 else len(a) // 5
    train_a, test_a = a[:len(a) - held], a[len(a) - held:]
    enc = Encoder(r, w, latent).to(DEV)
    decs = nn.ModuleList([Decoder(r, w, enc.top) for _ in range(2)]).to(DEV)
    discs = nn.ModuleList([PatchGan(w) for _ in range(2)]).to(DEV)
    gen_params = list(enc.parameters()) + list(decs.parameters())
    opt_g = torch.optim.Adam(gen_params, lr=2e-4, betas=(0.5, 0.999), eps=1e-8)
    opt_d = torch.optim.Adam(discs.parameters(), lr=2e-4, betas=(0.5, 0.999), eps=1e-8)
    sets = [train_a, b]
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        g_loss, d_loss = 0, 0
        warped = [random_warp(s[torch.randint(len(s), (batch,), device=DEV)]) for s in sets]
        # The shared encoder takes both identities' faces as one batch, as benjamin's does.
        codes = enc(torch.cat([inp for inp, _, _ in warped])).split(batch)
        for i, (inp, tgt, region) in enumerate(warped):
            face, mask = decs[i](codes[i])
            comp = mask * face + (1 - mask) * inp
            rec = (comp - tgt).abs().mean()
            raw = (face - tgt).abs().mean()
            adv = ((discs[i](comp) - 1) ** 2).mean()
            g_loss = g_loss + rec + 0.5 * raw + 0.5 * (mask - region).abs().mean() + 0.1 * adv
            d = ((discs[i](tgt) - 1) ** 2).mean() + (discs[i](comp.detach()) ** 2).mean()
            d_loss = d_loss + 0.5 * d
        opt_g.zero_grad()
        opt_d.zero_grad()
        g_loss.backward()
        torch.nn.utils.clip_grad_norm_(gen_params, 10.0)
        opt_g.step()
        # D's gradients from the generator's loss are discarded, as benjamin's separate optimisers do.
        opt_d.zero_grad()
        d_loss.backward()
        torch.nn.utils.clip_grad_norm_(discs.parameters(), 10.0)
        opt_d.step()
        steps += 1
    if DEV.type == "cuda":
        torch.cuda.synchronize()  # the steps queued are done before the clock stops
    elapsed = time.perf_counter() - start
    with torch.no_grad():
        # The decoder's own painting, not the masked composite (which could copy the input).
        face, _mask = decs[0](enc(test_a))
        s = sum(ssim(c * 255, t * 255) for c, t in zip(face, test_a)) / len(test_a)
    params = sum(p.numel() for p in gen_params) + sum(p.numel() for p in discs.parameters())
    print(json.dumps({"framework": f"PyTorch {torch.__version__} on {DEV}", "steps": steps, "seconds": elapsed,
                      "steps_per_second": steps / elapsed, "parameters_generator": sum(p.numel() for p in gen_params),
                      "parameters_all": params, "heldout_faces": len(test_a), "heldout_ssim": s}, indent=1))


if __name__ == "__main__":
    main()
