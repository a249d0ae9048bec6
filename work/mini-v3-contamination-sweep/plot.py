"""The contamination sweep on v3q's base model, drawn from the committed board: P+ - null on action (G1) and P+'s
leak on animals (G2) against how many of the 10 exemplars share the signature (mini-v3q 8, mini-v3r 6, mini-v3s 0).

    python work/mini-v3-contamination-sweep/plot.py    # from the repository root; writes sweep.png and sweep.json here
"""
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from actionbench.worlds.mini.lab.verdict import row_results  # noqa: E402
from actionbench.worlds.mini.lab.verdict_v3 import (ACTION_OVER_NULL, ANIMAL_LEAK, FLOOR_ROW, GATE_ROW,  # noqa: E402
                                                    action_over_null, animal_leak)
from actionbench.worlds.mini.world import WORLDS  # noqa: E402

HERE = Path(__file__).parent
BOARD = Path("leaderboard")
G1, G2 = 100 * ACTION_OVER_NULL, 100 * ANIMAL_LEAK

points = []
for world in ("mini-v3q", "mini-v3r", "mini-v3s"):
    p_plus = row_results(BOARD, GATE_ROW, world)
    g1, g2 = action_over_null(p_plus, row_results(BOARD, FLOOR_ROW, world)), animal_leak(p_plus)
    leak, leak_lo, leak_hi = g2["animal_leak"]
    points.append({"world": world, "sharing": WORLDS[world].signature_exemplars, "margin": 100 * g1["difference"],
                   "interval": [100 * x for x in g1["ci95"]],
                   "leak_animals": 100 * leak, "leak_interval": [100 * leak_lo, 100 * leak_hi]})
(HERE / "sweep.json").write_text(json.dumps(points, indent=1) + "\n")

fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
xs = [p["sharing"] for p in points]
left.errorbar(xs, [p["margin"] for p in points],
              yerr=[[p["margin"] - p["interval"][0] for p in points], [p["interval"][1] - p["margin"] for p in points]],
              fmt="o", capsize=4)
left.axhline(G1, ls="--", c="grey", label=f"G1: margin >= +{G1:.0f}")
left.axhline(0, c="k", lw=0.8, label="G1: interval above 0")
left.set(xlabel="exemplars sharing the signature (of 10)", ylabel="P+ - null, action (points)",
         title="G1: action margin over null (95 %)")
right.errorbar(xs, [p["leak_animals"] for p in points],
               yerr=[[p["leak_animals"] - p["leak_interval"][0] for p in points],
                     [p["leak_interval"][1] - p["leak_animals"] for p in points]], fmt="s", c="C3", capsize=4)
right.axhline(G2, ls="--", c="grey", label=f"G2: >= {G2:.0f} %")
right.set(xlabel="exemplars sharing the signature (of 10)", ylabel="P+ leak on animals (%)",
          title="G2: contamination present (95 %)")
for ax in (left, right):
    ax.set_xticks([0, 6, 8])
    ax.legend(fontsize=8, loc="best")
fig.suptitle("v3q's model, 3 training seeds per row: P+'s margin and leak as fewer exemplars share the context", fontsize=10)
fig.tight_layout()
fig.savefig(HERE / "sweep.png", dpi=110)
print(json.dumps(points, indent=1))
