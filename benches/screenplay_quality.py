#!/usr/bin/env python3
"""Scores screenplays as a reader would: the share of real words, how many characters speak and
how much each says, scenes, and whether the festival constraints are kept. Runs `benjamin write`
over 3 genres x 5 seeds (festival constraints) for each model named, and scores the corpus the
same way for comparison.

    python3 benches/screenplay_quality.py                       # the built-in adapters (smollm2)
    python3 benches/screenplay_quality.py --models smollm2 gpt  # both built-in models

Real words: Debian's wamerican list (apt-get install wamerican), after stripping a plural s or an
apostrophe suffix; character names from the screenplay's own cues count as real.
"""
import argparse, json, os, re, statistics, subprocess, sys, time

TITLE, LINE, PROP = "Zone Out", "Nobody will see your face.", "a brass key"
GENRES = ["noir", "scifi", "romance"]


def load_words(path="/usr/share/dict/words"):
    if not os.path.exists(path):
        sys.exit(f"{path} is missing: apt-get install wamerican")
    return {w.strip().lower() for w in open(path, encoding="utf-8", errors="ignore")}


def real_word_share(text, words, names):
    tokens = re.findall(r"[A-Za-z][A-Za-z'’]*", text)
    if not tokens:
        return 0.0
    names = {n.lower() for n in names}

    def real(t):
        t = t.lower().replace("’", "'")
        t = re.sub(r"'(s|t|re|ve|ll|d|m)$", "", t).rstrip("'")
        return t in words or t in names or (t.endswith("s") and t[:-1] in words)

    return sum(real(t) for t in tokens) / len(tokens)


def score(screenplay, words):
    elements = [e for s in screenplay["scenes"] for e in s["elements"]]
    dialogue = [e for e in elements if e["type"] == "dialogue"]
    speakers = {d["character"] for d in dialogue}
    text = "\n".join(e.get("text", "") for e in elements)
    return {
        "real_words": real_word_share(text, words, speakers | {w for n in speakers for w in n.split()}),
        "speaking_parts": len(speakers),
        "dialogue_lines": len(dialogue),
        "lines_per_part": len(dialogue) / max(1, len(speakers)),
        "scenes": len(screenplay["scenes"]),
        "line_kept": any(LINE in d["text"] for d in dialogue),
        "prop_kept": any(e["type"] == "action" and "brass key" in e["text"].lower() for e in elements),
        "cast": screenplay.get("cast", []),
    }


def write(binary, model, genre, seed, minutes):
    cmd = [binary, "write", "--json", "--quiet", "--genre", genre, "--seed", str(seed),
           "--minutes", str(minutes), "--title", TITLE, "--line", LINE, "--prop", PROP, "--model", model]
    started = time.time()
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        return None, out.stderr.strip(), time.time() - started
    return json.loads(out.stdout), None, time.time() - started


def parse_fountain(text):
    """Scenes, action and dialogue of a plain Fountain screenplay (enough for the corpus)."""
    scenes, blocks = [], [b.strip("\n") for b in re.split(r"\n\s*\n", text) if b.strip()]
    for b in blocks:
        lines = b.split("\n")
        first = lines[0].strip()
        if re.match(r"^(INT|EXT|INT\./EXT|I/E)[. ]", first):
            scenes.append({"elements": []})
            continue
        if not scenes:
            continue
        name = re.sub(r"\(.*\)", "", first).strip()
        if len(lines) > 1 and name and name == name.upper() and re.search(r"[A-Z]", name) and not name.endswith(":"):
            spoken = " ".join(l for l in lines[1:] if not l.strip().startswith("("))
            scenes[-1]["elements"].append({"type": "dialogue", "character": name, "text": spoken})
        elif not first.endswith("TO:"):
            scenes[-1]["elements"].append({"type": "action", "text": b})
    return {"scenes": scenes}


def summarise(rows):
    keys = ["real_words", "speaking_parts", "dialogue_lines", "lines_per_part", "scenes"]
    out = {}
    for k in keys:
        vals = [r[k] for r in rows]
        out[k] = {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}
    for k in ["line_kept", "prop_kept"]:
        out[k] = sum(r[k] for r in rows) / len(rows)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="./target/release/benjamin")
    ap.add_argument("--models", nargs="+", default=["smollm2", "gpt"])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--minutes", type=float, default=4.0)
    ap.add_argument("--corpus", default="corpora")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    words = load_words()
    report = {}
    for model in args.models:
        rows, failures, seconds = [], [], []
        for genre in GENRES:
            for seed in range(1, args.seeds + 1):
                got, err, took = write(args.binary, model, genre, seed, args.minutes)
                seconds.append(took)
                if got is None:
                    failures.append(f"{genre} seed {seed}: {err}")
                    continue
                s = score(got["screenplay"], words)
                s.update(genre=genre, seed=seed, seconds=took, tokens_per_second=got["stats"]["tokens_per_second"])
                rows.append(s)
                print(f"{model:8} {genre:8} seed {seed}: words {s['real_words']:.3f} parts {s['speaking_parts']} "
                      f"lines {s['dialogue_lines']} ({s['lines_per_part']:.1f} a part) scenes {s['scenes']} "
                      f"line {'kept' if s['line_kept'] else 'LOST'} prop {'kept' if s['prop_kept'] else 'LOST'} "
                      f"{took:.0f} s", file=sys.stderr)
        report[model] = {"summary": summarise(rows) if rows else None, "failures": failures,
                         "seconds_median": statistics.median(seconds), "runs": rows}
    # The corpus, for comparison: each screenplay through a minimal Fountain reading.
    corpus_rows = []
    for genre in GENRES:
        folder = os.path.join(args.corpus, genre)
        for name in sorted(os.listdir(folder)):
            corpus_rows.append(score(parse_fountain(open(os.path.join(folder, name)).read()), words))
    report["corpus"] = {"summary": summarise(corpus_rows)}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for name, r in report.items():
            s = r["summary"]
            if s is None:
                print(f"{name}: every run failed: {r['failures'][:3]}")
                continue
            print(f"{name:8} real words {s['real_words']['median']:.3f} ({s['real_words']['min']:.3f}-{s['real_words']['max']:.3f})"
                  f"  parts {s['speaking_parts']['median']} ({s['speaking_parts']['min']}-{s['speaking_parts']['max']})"
                  f"  lines/part {s['lines_per_part']['median']:.1f}  scenes {s['scenes']['median']}"
                  f"  line kept {s['line_kept']:.0%}  prop kept {s['prop_kept']:.0%}"
                  + (f"  failures {len(r['failures'])}  median {r['seconds_median']:.0f} s a screenplay" if 'failures' in r else ""))


if __name__ == "__main__":
    main()
