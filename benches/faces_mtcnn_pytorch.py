"""facenet-pytorch's MTCNN (the PyTorch original benjamin's detector is compared with).

    python3 benches/faces_mtcnn_pytorch.py FNP_SRC IMAGE... > out.json

FNP_SRC is the unpacked facenet-pytorch 2.6.0 wheel (`pip download facenet-pytorch==2.6.0
--no-deps` then unzip). torchvision is not needed: its `batched_nms` (the only thing
facenet-pytorch takes from it for detection) is replaced by the same greedy IoU suppression
in plain torch. Prints, per image, the faces (box, score, landmarks) and the seconds taken.
With --raw it also prints the networks' raw outputs on fixed inputs (the test fixture).
"""
import json
import sys
import time
import types

import numpy as np
import torch


def batched_nms(boxes, scores, idxs, iou_threshold):
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64)
    offsets = idxs.to(boxes) * (boxes.max() + 1)
    b = boxes + offsets[:, None]
    order = torch.argsort(scores, descending=True, stable=True)
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    suppressed = torch.zeros(len(b), dtype=torch.bool)
    keep = []
    for k in range(len(order)):
        i = order[k]
        if suppressed[i]:
            continue
        keep.append(int(i))
        rest = order[k + 1:]
        xx1 = torch.maximum(b[i, 0], b[rest, 0])
        yy1 = torch.maximum(b[i, 1], b[rest, 1])
        xx2 = torch.minimum(b[i, 2], b[rest, 2])
        yy2 = torch.minimum(b[i, 3], b[rest, 3])
        inter = (xx2 - xx1).clamp(min=0) * (yy2 - yy1).clamp(min=0)
        iou = inter / (area[i] + area[rest] - inter)
        suppressed[rest[iou > iou_threshold]] = True
    return torch.as_tensor(keep, dtype=torch.int64)


def stub_torchvision():
    tv = types.ModuleType("torchvision")
    ops = types.ModuleType("torchvision.ops")
    boxes = types.ModuleType("torchvision.ops.boxes")
    boxes.batched_nms = batched_nms
    transforms = types.ModuleType("torchvision.transforms")
    functional = types.ModuleType("torchvision.transforms.functional")
    transforms.functional = functional
    tv.ops, ops.boxes, tv.transforms = ops, boxes, transforms
    for name, mod in [("torchvision", tv), ("torchvision.ops", ops), ("torchvision.ops.boxes", boxes),
                      ("torchvision.transforms", transforms),
                      ("torchvision.transforms.functional", functional)]:
        sys.modules[name] = mod


def main():
    args = sys.argv[1:]
    raw = "--raw" in args
    args = [a for a in args if a != "--raw"]
    sys.path.insert(0, args[0])
    stub_torchvision()
    # The package's __init__ pulls in the recognition model and its downloader; skip it.
    pkg = types.ModuleType("facenet_pytorch")
    pkg.__path__ = [args[0] + "/facenet_pytorch"]
    sys.modules["facenet_pytorch"] = pkg
    from PIL import Image
    from facenet_pytorch.models.mtcnn import PNet, RNet, ONet
    from facenet_pytorch.models.utils.detect_face import detect_face

    torch.set_num_threads(int(__import__("os").environ.get("THREADS", "1")))
    pnet, rnet, onet = PNet().eval(), RNet().eval(), ONet().eval()
    out = {"images": []}
    with torch.no_grad():
        for path in args[1:]:
            img = np.asarray(Image.open(path).convert("RGB"))
            if not raw:  # a warm-up run, as benjamin's side has (the fixture needs none)
                detect_face(img, 20, pnet, rnet, onet, [0.6, 0.7, 0.7], 0.709, "cpu")
            t = time.perf_counter()
            boxes, points = detect_face(img, 20, pnet, rnet, onet, [0.6, 0.7, 0.7], 0.709, "cpu")
            dt = time.perf_counter() - t
            faces = [{"bbox": [float(v) for v in b[:4]], "score": float(b[4]),
                      "landmarks": [[float(p[0]), float(p[1])] for p in pts]}
                     for b, pts in zip(boxes[0], points[0])]
            out["images"].append({"path": path, "seconds": dt, "faces": faces})
        if raw:
            # Fixed inputs: a smooth deterministic pattern, as the Rust test builds it.
            def pattern(n, h, w, phase):
                c, y, x = torch.meshgrid(torch.arange(3.0), torch.arange(float(h)), torch.arange(float(w)),
                                         indexing="ij")
                v = torch.sin(0.37 * x + 0.23 * y + 1.1 * c + phase) * 0.8
                return torch.stack([v + 0.05 * k for k in range(n)])
            reg, prob = pnet(pattern(1, 30, 36, 0.0))
            r_reg, r_prob = rnet(pattern(2, 24, 24, 0.5))
            o_reg, o_marks, o_prob = onet(pattern(2, 48, 48, 1.0))
            out["raw"] = {
                "pnet_reg": reg.flatten().tolist(), "pnet_prob": prob[:, 1].flatten().tolist(),
                "rnet_reg": r_reg.flatten().tolist(), "rnet_prob": r_prob[:, 1].flatten().tolist(),
                "onet_reg": o_reg.flatten().tolist(), "onet_marks": o_marks.flatten().tolist(),
                "onet_prob": o_prob[:, 1].flatten().tolist(),
            }
    json.dump(out, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
