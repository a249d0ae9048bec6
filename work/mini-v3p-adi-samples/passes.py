"""Does a rung pass the pre-registered rule (context kept >= 0.50 and pose changed >= 0.80, generated samples)?"""
import json
import sys

name = sys.argv[1]
g = json.load(open(f"work/mini-v3p-adi-samples/{name}.json"))["sources"]["generated"]
ok = g["context_kept"] >= 0.5 and g["pose_changed"] >= 0.8
print(name, "PASSES" if ok else "fails",
      {k: round(g[k], 4) for k in ("context_kept", "pose_changed", "person_kept", "as_assumed")})
sys.exit(0 if ok else 1)
