#!/usr/bin/env python3
"""Reads a benjamin film's Content Credentials with the C2PA reference implementation's Python
bindings (another build of c2pa-rs than the one benjamin links), as an independent check.

    python3 -m venv /tmp/c2pa-venv && /tmp/c2pa-venv/bin/pip install c2pa-python
    /tmp/c2pa-venv/bin/python scripts/c2pa_python_check.py films/noir/film.mp4 [--ca CA.pem]

--ca: the signing authority to trust (benjamin's is ~/.config/benjamin/signing/ca.pem); without
it the signature is checked but the self-made certificate is reported untrusted.
Exits non-zero when the manifest is missing or fails anything but trust.
"""
import argparse
import json
import sys

import c2pa

ap = argparse.ArgumentParser()
ap.add_argument("film")
ap.add_argument("--ca")
args = ap.parse_args()

context = None
if args.ca:
    anchors = open(args.ca).read()
    context = c2pa.Context(c2pa.Settings.from_dict({"trust": {"user_anchors": anchors}}))
try:
    reader = c2pa.Reader(args.film, context=context) if context else c2pa.Reader(args.film)
except c2pa.C2paError as e:
    print(f"{args.film}: no readable manifest ({type(e).__name__}: {e})")
    sys.exit(1)
with reader:
    state = reader.get_validation_state()
    results = reader.get_validation_results()["activeManifest"]
    manifest = reader.get_active_manifest()
failures = [s["code"] for s in results.get("failure", [])]
print(f"c2pa-python {getattr(c2pa, '__version__', '?')} reading {args.film}")
print(f"validation state: {state}")
print(f"failures: {failures or 'none'}")
print(f"successes: {[s['code'] for s in results.get('success', [])]}")
sig = manifest.get("signature_info", {})
print(f"signed by: {sig.get('common_name')} / issuer {sig.get('issuer')} ({sig.get('alg')}) at {sig.get('time')}")
print(f"claim generator: {manifest.get('claim_generator_info')}")
for a in manifest["assertions"]:
    if a["label"].startswith("c2pa.actions"):
        for action in a["data"]["actions"]:
            print(f"action: {action['action']} {action.get('digitalSourceType', '')}")
    if a["label"] == "org.benjamin.provenance":
        p = a["data"]
        print(f"benjamin record: {json.dumps(p['title'])} ({p['genre']}), {len(p['sources'])} sources, "
              f"models {[m['name'] for m in p.get('models', [])]}, actors {[x['actor'] for x in p.get('actors', [])]}")
untrusted_only = all(f == "signingCredential.untrusted" for f in failures)
sys.exit(0 if state in ("Valid", "Trusted") and untrusted_only else 1)
