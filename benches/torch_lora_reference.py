#!/usr/bin/env python3
"""PyTorch reference for the screenplay adapters: SmolLM2-135M from the same GGUF (transformers
dequantizes it to float32), peft LoRA of the same rank and alpha on the same seven projections,
AdamW, windows of the corpus with the genre as the first token; prints training tokens/s, then
greedy sampling tokens/s with transformers' `generate`. Needs torch, transformers, peft, gguf.
Prints one JSON object.

    python3 benches/torch_lora_reference.py --gguf models/third-party/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf
"""
import argparse, glob, json, os, random, time

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

ap = argparse.ArgumentParser()
ap.add_argument("--gguf", required=True)
ap.add_argument("--corpus", default="corpora")
ap.add_argument("--steps", type=int, default=12)
ap.add_argument("--warmup", type=int, default=2)
ap.add_argument("--batch", type=int, default=4)
ap.add_argument("--context", type=int, default=256)
ap.add_argument("--rank", type=int, default=8)
ap.add_argument("--new-tokens", type=int, default=200)
ap.add_argument("--threads", type=int, default=os.cpu_count())
args = ap.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(0)

folder, name = os.path.split(os.path.abspath(args.gguf))
tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, torch_dtype=torch.float32)
targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
lora = LoraConfig(r=args.rank, lora_alpha=2 * args.rank, lora_dropout=0.0, target_modules=targets)
model = get_peft_model(model, lora)
params = sum(p.numel() for p in model.parameters() if p.requires_grad)

ids = []
for path in sorted(glob.glob(os.path.join(args.corpus, "*", "*.fountain"))):
    ids += tok(open(path).read())["input_ids"] + [tok.eos_token_id]
rng = random.Random(0)
opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=4e-4, weight_decay=0.0)
model.train()
timed, started = 0, None
for step in range(args.warmup + args.steps):
    if step == args.warmup:
        started = time.perf_counter()
    starts = [rng.randrange(len(ids) - args.context - 1) for _ in range(args.batch)]
    x = torch.tensor([ids[s:s + args.context] for s in starts])
    y = torch.tensor([ids[s + 1:s + args.context + 1] for s in starts])
    logits = model(input_ids=x).logits
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    opt.zero_grad()
    loss.backward()
    opt.step()
train_seconds = time.perf_counter() - started
train_tps = args.steps * args.batch * args.context / train_seconds

model.eval()
prompt = tok("Title: Zone Out\nAuthor: benjamin corpus\n\nINT. ", return_tensors="pt")
with torch.no_grad():
    model.generate(**prompt, max_new_tokens=8, do_sample=False)
    t0 = time.perf_counter()
    out = model.generate(**prompt, max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens, do_sample=False)
    gen_seconds = time.perf_counter() - t0
new = out.shape[1] - prompt["input_ids"].shape[1]
print(json.dumps({
    "trainable_parameters": params, "train_tokens_per_second": train_tps, "train_seconds": train_seconds,
    "last_loss": float(loss), "sample_tokens_per_second": new / gen_seconds, "threads": args.threads,
}))
