#!/usr/bin/env python3
"""Shot detection: benjamin against PySceneDetect (ContentDetector and AdaptiveDetector at
their defaults), on evaluation videos whose cuts are known by construction.

The videos concatenate pieces of ../shared/data/video/physicsworks.webm (taken from inside its
own shots: stretches where neither tool nor benjamin sees a cut, with a second of margin) and
of ../shared/data/stills (with a slow zoom or pan, so there is camera motion that must not
cut), joined by hard cuts and some dissolves, at three sizes and frame rates. Reports F1 of
cut positions (a hard cut counts within +-1 frame; a dissolve anywhere within its blend +-1)
and frames per second, timed two ways for each tool:
- whole command: from starting the process to its exit (benjamin's `archive detect`,
  PySceneDetect's `scenedetect ... detect-adaptive list-scenes`), start-up included;
- in-process: the span PySceneDetect's own figure covers, from opening the video to the cuts
  (its imports and open_video are outside), and benjamin's own timing of the same span.
The speed ratios at the end compare like with like.

    pip install scenedetect opencv-python-headless
    cargo build --release
    python3 benches/shots_vs_pyscenedetect.py [--keep DIR] [--rounds N]
"""
import argparse, json, os, random, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared", "data")
BIN = os.environ.get("BENJAMIN_BIN", os.path.join(ROOT, "target", "release", "benjamin"))
CLIP = os.path.join(SHARED, "video", "physicsworks.webm")
STILLS = [os.path.join(SHARED, "stills", n) for n in ("rocket.jpg", "hubble_deep_field.jpg", "coffee.png")]

# (width, height, fps, pieces, seed)
VIDEOS = [(320, 240, 15, 24, 1), (640, 360, 25, 24, 2), (1280, 720, 30, 20, 3)]


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def pyscenedetect(path, detector):
    from scenedetect import open_video, SceneManager, ContentDetector, AdaptiveDetector
    video = open_video(path)
    sm = SceneManager()
    sm.add_detector(ContentDetector() if detector == "content" else AdaptiveDetector())
    t = time.perf_counter()
    sm.detect_scenes(video)
    seconds = time.perf_counter() - t
    scenes = sm.get_scene_list()
    frames = video.frame_number
    return [s[0].frame_num for s in scenes[1:]], frames / seconds


def pyscenedetect_command(path):
    """PySceneDetect's command line, AdaptiveDetector at its defaults: frames per second
    over the whole command. Cuts from its scene list (start frames are 1-based)."""
    probe = run(["ffprobe", "-v", "error", "-count_packets", "-select_streams", "v:0", "-show_entries",
                 "stream=nb_read_packets", "-of", "csv=p=0", path])
    frames = int(probe.stdout.strip())
    t = time.perf_counter()
    out = run(["scenedetect", "-i", path, "detect-adaptive", "list-scenes", "-n"])
    seconds = time.perf_counter() - t
    rows = [line.split("|") for line in out.stdout.splitlines() if line.strip().startswith("|")]
    starts = [int(r[2]) for r in rows if len(r) > 2 and r[1].strip().isdigit()]
    return [f - 1 for f in starts[1:]], frames / seconds


def benjamin(path, detector="adaptive", in_process=False):
    """Frames per second over the whole command (process start-up included), or with
    in_process over benjamin's own timing of the scan and detection, from opening the video
    on: the span PySceneDetect's figure covers (its imports and open_video are outside)."""
    t = time.perf_counter()
    out = run([BIN, "--quiet", "--json", "archive", "detect", path, "--detector", detector])
    seconds = time.perf_counter() - t
    r = json.loads(out.stdout)
    return r["cuts"], r["frames_per_second"] if in_process else r["frames"] / seconds


def calm_stretches(min_len=3.0):
    """Cut-free stretches of the lecture clip: no tool sees a cut there, with 1 s of margin."""
    cuts = set()
    fps = 15.0
    for det in ("content", "adaptive"):
        c, _ = pyscenedetect(CLIP, det)
        cuts.update(f / fps for f in c)
    c, _ = benjamin(CLIP, "adaptive")
    cuts.update(f / fps for f in c)
    c, _ = benjamin(CLIP, "content")
    cuts.update(f / fps for f in c)
    bounds = [0.0] + sorted(cuts) + [203.0]
    return [(a + 1.0, b - 1.0) for a, b in zip(bounds, bounds[1:]) if b - a - 2.0 >= min_len]


def make_piece(i, rng, stretches, w, h, fps, tmp):
    out = os.path.join(tmp, f"piece{i:03d}.mp4")
    length = rng.uniform(1.5, 5.0)
    vf_fit = f"scale={w}:{h}:force_original_aspect_ratio=decrease,pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,setsar=1,fps={fps}"
    if rng.random() < 0.3:
        still = rng.choice(STILLS)
        n = int(length * fps)
        zoom = f"zoompan=z='1+0.15*on/{n}':x='iw/2-(iw/zoom/2)+{rng.choice([-1, 1])}*on*0.5':y='ih/2-(ih/zoom/2)':d={n}:s={w}x{h}:fps={fps}"
        cmd = ["ffmpeg", "-y", "-loglevel", "error", "-i", still, "-vf", zoom + ",setsar=1", "-frames:v", str(n)]
    else:
        stretch = rng.choice([s for s in stretches if s[1] - s[0] >= length] or stretches)
        length = min(length, stretch[1] - stretch[0])
        start = rng.uniform(stretch[0], stretch[1] - length)
        cmd = ["ffmpeg", "-y", "-loglevel", "error", "-ss", f"{start:.3f}", "-t", f"{length:.3f}", "-i", CLIP, "-vf", vf_fit]
    run(cmd + ["-an", "-c:v", "libx264", "-preset", "veryfast", "-crf", "16", "-pix_fmt", "yuv420p", out])
    probe = run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", out])
    return out, int(probe.stdout.strip())


def build(w, h, fps, count, seed, stretches, tmp):
    """Joins pieces; returns the video and its truth: (frame, tolerance) per cut."""
    rng = random.Random(seed)
    pieces = [make_piece(i, rng, stretches, w, h, fps, tmp) for i in range(count)]
    inputs, filters, truth = [], [], []
    for k, (p, _) in enumerate(pieces):
        inputs += ["-i", p]
        # xfade wants both inputs on the same time base.
        filters.append(f"[{k}:v]settb=AVTB,setpts=PTS-STARTPTS[i{k}]")
    acc, acc_frames = "[i0]", pieces[0][1]
    for k in range(1, count):
        frames = pieces[k][1]
        label = f"[j{k}]"
        dissolve = rng.random() < 0.25 and frames > fps and acc_frames > fps
        if dissolve:
            d = rng.choice([0.5, 0.8, 1.0])
            dn = int(round(d * fps))
            offset = (acc_frames - dn) / fps
            filters.append(f"{acc}[i{k}]xfade=transition=fade:duration={dn / fps:.6f}:offset={offset:.6f},settb=AVTB{label}")
            truth.append((acc_frames - dn + dn // 2, dn // 2 + 1))
            acc_frames += frames - dn
        else:
            filters.append(f"{acc}[i{k}]concat=n=2:v=1:a=0,settb=AVTB{label}")
            truth.append((acc_frames, 1))
            acc_frames += frames
        acc = label
    out = os.path.join(tmp, f"eval_{w}x{h}_{fps}.mp4")
    run(["ffmpeg", "-y", "-loglevel", "error", *inputs, "-filter_complex", ";".join(filters), "-map", acc,
         "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p", "-r", str(fps), out])
    return out, truth, acc_frames


def f1(found, truth):
    used, tp = set(), 0
    for frame, tol in truth:
        match = [i for i, f in enumerate(found) if i not in used and abs(f - frame) <= tol]
        if match:
            used.add(min(match, key=lambda i: abs(found[i] - frame)))
            tp += 1
    p = tp / len(found) if found else 0.0
    r = tp / len(truth) if truth else 0.0
    return (2 * p * r / (p + r) if p + r else 0.0), p, r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keep", help="keep the evaluation videos in this folder")
    ap.add_argument("--rounds", type=int, default=3,
                    help="time each tool this many times, interleaved; the median counts")
    args = ap.parse_args()
    if not os.path.exists(BIN):
        sys.exit("build first: cargo build --release")
    tmp = args.keep or tempfile.mkdtemp(prefix="shots-bench-")
    os.makedirs(tmp, exist_ok=True)
    stretches = calm_stretches()
    print(f"{len(stretches)} cut-free stretches of the lecture clip", file=sys.stderr)
    tools = [("benjamin adaptive", lambda v: benjamin(v)),
             ("  in-process", lambda v: benjamin(v, in_process=True)),
             ("benjamin content", lambda v: benjamin(v, "content")),
             ("PySceneDetect Adaptive", pyscenedetect_command),
             ("  in-process ", lambda v: pyscenedetect(v, "adaptive")),
             ("PySceneDetect Content", lambda v: pyscenedetect(v, "content"))]
    totals = {}
    for w, h, fps, count, seed in VIDEOS:
        video, truth, frames = build(w, h, fps, count, seed, stretches, tmp)
        print(f"\n{os.path.basename(video)}: {frames} frames, {len(truth)} cuts ({sum(t > 1 for _, t in truth)} dissolves)")
        runs = {name: [] for name, _ in tools}
        # Interleaved rounds, so that a slow spell of the machine hits every tool alike.
        for _ in range(args.rounds):
            for name, fn in tools:
                runs[name].append(fn(video))
        for name, _ in tools:
            found = runs[name][0][0]
            speed = statistics.median(r[1] for r in runs[name])
            score, p, r = f1(found, truth)
            totals.setdefault(name, []).append((score, speed, frames))
            print(f"  {name:24s} F1 {score:.3f} (P {p:.2f} R {r:.2f})  {speed:7.0f} frames/s")
    print("\nmean over videos (frames per second: all frames over all time):")
    mean = {}
    for name, rows in totals.items():
        mean[name] = sum(r[2] for r in rows) / sum(r[2] / r[1] for r in rows)
        print(f"  {name:24s} F1 {sum(r[0] for r in rows) / len(rows):.3f}  {mean[name]:7.0f} frames/s")
    print("\nbenjamin adaptive against PySceneDetect Adaptive:")
    print(f"  whole command / whole command: {mean['benjamin adaptive'] / mean['PySceneDetect Adaptive']:.2f}x")
    print(f"  in-process / in-process:       {mean['  in-process'] / mean['  in-process ']:.2f}x")
    print(f"  whole command / in-process:    {mean['benjamin adaptive'] / mean['  in-process ']:.2f}x")


if __name__ == "__main__":
    main()
