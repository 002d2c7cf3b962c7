"""Figure (e): gamma (and lambda, if learned) trajectories per (K, scheme), and the mean outer
advantage A' (the outer-value-function paper's bias measure, ~0 for an unbiased A'), 95% CI over
seeds."""

import matplotlib.pyplot as plt

from mgrl.figures.common import band, save, scheme_colour

INPUTS = ("training",)


def plot(data, schemes, out_png):
    training = data["training"]
    meta = training[training.scheme != "a2c"]
    params = ["meta/gamma"] + (["meta/lambda"] if meta["meta/lambda"].std() > 0 else [])
    if "meta/outer_advantage_mean" in meta and meta["meta/outer_advantage_mean"].notna().any():
        params.append("meta/outer_advantage_mean")
    horizons = sorted(meta.horizon.unique())
    fig, axes = plt.subplots(len(params), len(horizons), squeeze=False, sharey="row",
                             figsize=(max(6.5, 4 * len(horizons)), 3.3 * len(params)))
    for row, param in enumerate(params):
        for ax, horizon in zip(axes[row], horizons):
            for scheme in schemes:
                g = meta[(meta.horizon == horizon) & (meta.scheme == scheme)]
                if not g.empty:
                    band(ax, g, "env_steps", param, scheme, scheme_colour(scheme, schemes),
                         unit_interval=param != "meta/outer_advantage_mean")
            ax.set_title(f"{param.split('/')[1]}, K = {horizon}")
            ax.set_xlabel("environment steps (per seed)")
            ax.grid(alpha=0.3)
        axes[row][0].set_ylabel({"meta/outer_advantage_mean": "mean outer advantage A'"}.get(
            param, param.split("/")[1] + " (meta-learned)"))
        if param == "meta/outer_advantage_mean":
            for ax in axes[row]:
                ax.axhline(0.0, color="black", lw=0.8)
    axes[0][-1].legend(fontsize=8)
    fig.suptitle("Meta-parameters and mean outer advantage (mean and 95% CI over seeds)")
    save(fig, out_png)
