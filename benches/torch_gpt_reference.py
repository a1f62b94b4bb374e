#!/usr/bin/env python3
"""A PyTorch reference for benjamin's GPT: nanoGPT's shakespeare_char CPU configuration
(4 layers, 4 heads, 128 wide, context 64, batch 12, dropout 0, AdamW lr 1e-3 -> 1e-4 with 100
warm-up steps, beta2 0.99, weight decay 0.1, gradient clip 1.0), char-level, 90/10 split.
Trains for at most --iters steps or --seconds of wall time, whichever comes first, and prints
one JSON line: steps, tokens/s, validation loss.
"""
import argparse, json, math, time
import torch
import torch.nn as nn
import torch.nn.functional as F

ap = argparse.ArgumentParser()
ap.add_argument("--text", required=True)
ap.add_argument("--iters", type=int, default=2000)
ap.add_argument("--seconds", type=float, default=1e9)
ap.add_argument("--threads", type=int, default=0)
a = ap.parse_args()
if a.threads:
    torch.set_num_threads(a.threads)
torch.manual_seed(1337)
text = open(a.text, encoding="utf-8").read()
chars = sorted(set(text))
stoi = {c: i for i, c in enumerate(chars)}
data = torch.tensor([stoi[c] for c in text], dtype=torch.long)
n = int(0.9 * len(data))
train, val = data[:n], data[n:]
V, T, B, L, H, C = len(chars), 64, 12, 4, 4, 128


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(C), nn.LayerNorm(C)
        self.qkv, self.proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        self.fc, self.out = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q, k, v = (z.view(b, t, H, c // H).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, c))
        return x + self.out(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V, C), nn.Embedding(T, C)
        self.blocks = nn.ModuleList(Block() for _ in range(L))
        self.ln_f = nn.LayerNorm(C)
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, 0.0, 0.02)

    def forward(self, idx, targets):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for blk in self.blocks:
            x = blk(x)
        logits = self.ln_f(x) @ self.wte.weight.t()
        return F.cross_entropy(logits.view(-1, V), targets.view(-1))


def batch(d, g):
    ix = torch.randint(len(d) - T - 1, (B,), generator=g)
    return torch.stack([d[i:i + T] for i in ix]), torch.stack([d[i + 1:i + T + 1] for i in ix])


model = GPT()
decay = [p for p in model.parameters() if p.dim() >= 2]
other = [p for p in model.parameters() if p.dim() < 2]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}], lr=1e-3, betas=(0.9, 0.99))


def lr_at(it):
    if it < 100:
        return 1e-3 * (it + 1) / 100
    p = (it - 100) / (a.iters - 100)
    return 1e-4 + 0.5 * (1e-3 - 1e-4) * (1 + math.cos(math.pi * min(p, 1.0)))


@torch.no_grad()
def evaluate():
    g = torch.Generator().manual_seed(7)
    return sum(model(*batch(val, g)).item() for _ in range(20)) / 20


g = torch.Generator().manual_seed(1337)
start = time.perf_counter()
step = 0
while step < a.iters and time.perf_counter() - start < a.seconds:
    for group in opt.param_groups:
        group["lr"] = lr_at(step)
    loss = model(*batch(train, g))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    step += 1
train_s = time.perf_counter() - start
print(json.dumps({"steps": step, "seconds": train_s, "tokens_per_second": step * B * T / train_s,
                  "val_loss": evaluate(), "parameters": sum(p.numel() for p in model.parameters()),
                  "threads": torch.get_num_threads()}))
