"""Figure (e): gamma (and lambda, if learned) trajectories per (K, scheme), 95% CI over seeds."""

import matplotlib.pyplot as plt

from mgrl.figures.common import band, save, scheme_colour

INPUTS = ("training",)


def plot(data, schemes, out_png):
    training = data["training"]
    meta = training[training.scheme != "a2c"]
    params = ["meta/gamma"] + (["meta/lambda"] if meta["meta/lambda"].std() > 0 else [])
    horizons = sorted(meta.horizon.unique())
    fig, axes = plt.subplots(len(params), len(horizons), figsize=(4 * len(horizons), 3.3 * len(params)),
                             squeeze=False, sharey="row")
    for row, param in enumerate(params):
        for ax, horizon in zip(axes[row], horizons):
            for scheme in schemes:
                g = meta[(meta.horizon == horizon) & (meta.scheme == scheme)]
                if not g.empty:
                    band(ax, g, "env_steps", param, scheme, scheme_colour(scheme, schemes),
                         unit_interval=True)
            ax.set_title(f"{param.split('/')[1]}, K = {horizon}")
            ax.set_xlabel("environment steps (per seed)")
            ax.grid(alpha=0.3)
        axes[row][0].set_ylabel(param.split("/")[1] + " (meta-learned)")
    axes[0][-1].legend(fontsize=8)
    fig.suptitle("Meta-parameter trajectories (mean and 95% CI over seeds)")
    save(fig, out_png)
