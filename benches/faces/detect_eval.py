"""Scores detections (benjamin's and facenet-pytorch's JSON) against benches/faces/labels.json:
recall and false positives at IoU >= 0.4, landmark error (mean distance over the five points,
as a share of the labelled inter-ocular distance) and seconds per image.

    python3 benches/faces/detect_eval.py LABELS.json NAME=RESULTS.json ...
"""
import json
import sys


def iou(a, b):
    iw = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])
    return inter / (area(a) + area(b) - inter)


def main():
    labels = json.load(open(sys.argv[1]))["images"]
    for arg in sys.argv[2:]:
        name, path = arg.split("=", 1)
        res = {}
        for im in json.load(open(path))["images"]:
            key = "/".join(im["path"].split("/")[-2:])
            res[key] = im
        found = total = fp = 0
        errs = []
        secs = []
        for key, faces in labels.items():
            im = res[key]
            secs.append(im["seconds"])
            dets = [d for d in im["faces"]]
            used = set()
            for f in faces:
                total += 1
                best = max(range(len(dets)), key=lambda i: iou(f["box"], dets[i]["bbox"]), default=None)
                if best is not None and iou(f["box"], dets[best]["bbox"]) >= 0.4:
                    found += 1
                    used.add(best)
                    if "landmarks" in f:
                        gt, pr = f["landmarks"], dets[best]["landmarks"]
                        iod = ((gt[0][0] - gt[1][0]) ** 2 + (gt[0][1] - gt[1][1]) ** 2) ** 0.5
                        d = sum(((g[0] - p[0]) ** 2 + (g[1] - p[1]) ** 2) ** 0.5 for g, p in zip(gt, pr)) / 5
                        errs.append(d / iod)
            fp += len(dets) - len(used)
        print(f"{name}: recall {found}/{total} = {found / total:.3f}, false positives {fp}, "
              f"landmark error {sum(errs) / max(len(errs), 1) * 100:.1f}% of the inter-ocular distance "
              f"({len(errs)} faces), {sum(secs) / len(secs):.3f} s/image "
              f"(photos {sum(secs[:4]) / 4:.3f} s, 320x240 frames {sum(secs[4:]) / len(secs[4:]):.3f} s = "
              f"{len(secs[4:]) / sum(secs[4:]):.1f} frames/s)")


if __name__ == "__main__":
    main()
