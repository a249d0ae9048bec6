"""The contamination sweep on v3q's base model, drawn from the committed board: P+ - null on action (G1) and P+'s
leak on animals (G2) against how many of the 10 exemplars share the signature (mini-v3q 8, mini-v3r 6, mini-v3s 0).

    python work/mini-v3-contamination-sweep/plot.py    # from the repository root; writes sweep.png and sweep.json here
"""
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from actionbench.results.compare import compare_results, load_results  # noqa: E402

HERE = Path(__file__).parent
BOARD = Path("leaderboard/results")
WORLDS = (("mini-v3q", 8), ("mini-v3r", 6), ("mini-v3s", 0))
G1, G2 = 8.0, 30.0

points = []
for world, sharing in WORLDS:
    p_plus, null = load_results(BOARD / f"{world}-p_plus_4_anchors.json"), load_results(BOARD / f"{world}-null.json")
    diff = compare_results(p_plus, null, n_boot=2000, seed=0)
    action = diff["metrics"]["action"]
    animal = p_plus["metrics"]["per_category"]["animal"]["leak"]
    points.append({"world": world, "sharing": sharing, "margin": 100 * action["difference"],
                   "interval": [100 * x for x in action["ci95"]],
                   "leak_animals": 100 * animal["mean"], "leak_interval": [100 * x for x in animal["ci95"]]})
(HERE / "sweep.json").write_text(json.dumps(points, indent=1) + "\n")

fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
xs = [p["sharing"] for p in points]
left.errorbar(xs, [p["margin"] for p in points],
              yerr=[[p["margin"] - p["interval"][0] for p in points], [p["interval"][1] - p["margin"] for p in points]],
              fmt="o", capsize=4)
left.axhline(G1, ls="--", c="grey", label="G1: margin >= +8")
left.axhline(0, c="k", lw=0.8, label="G1: interval above 0")
left.set(xlabel="exemplars sharing the signature (of 10)", ylabel="P+ - null, action (points)",
         title="G1: action margin over null (95 %)")
right.errorbar(xs, [p["leak_animals"] for p in points],
               yerr=[[p["leak_animals"] - p["leak_interval"][0] for p in points],
                     [p["leak_interval"][1] - p["leak_animals"] for p in points]], fmt="s", c="C3", capsize=4)
right.axhline(G2, ls="--", c="grey", label="G2: >= 30 %")
right.set(xlabel="exemplars sharing the signature (of 10)", ylabel="P+ leak on animals (%)",
          title="G2: contamination present (95 %)")
for ax in (left, right):
    ax.set_xticks([0, 6, 8])
    ax.legend(fontsize=8, loc="best")
fig.suptitle("v3q's model, 3 training seeds per row: P+'s margin and leak as fewer exemplars share the context", fontsize=10)
fig.tight_layout()
fig.savefig(HERE / "sweep.png", dpi=110)
print(json.dumps(points, indent=1))
