"""Figure (d): episode return vs environment steps per (K, scheme), 95% CI bands over seeds."""

import matplotlib.pyplot as plt

from mgrl.figures.common import band, save, scheme_colour

INPUTS = ("training",)


def plot(data, schemes, out_png):
    training = data["training"]
    horizons = sorted(h for h in training.horizon.unique())
    baseline = training[training.scheme == "a2c"]
    fig, axes = plt.subplots(1, len(horizons), figsize=(4 * len(horizons), 3.6), squeeze=False,
                             sharey=True)
    for ax, horizon in zip(axes[0], horizons):
        if not baseline.empty:
            band(ax, baseline, "env_steps", "train/episode_return", "a2c (fixed gamma)", "#444444", "--")
        for scheme in schemes:
            g = training[(training.horizon == horizon) & (training.scheme == scheme)]
            if not g.empty:
                band(ax, g, "env_steps", "train/episode_return", scheme, scheme_colour(scheme, schemes))
        ax.set_title(f"K = {horizon}")
        ax.set_xlabel("environment steps (per seed)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("episode return (Snake: fruits per episode)")
    axes[0][-1].legend(fontsize=8)
    fig.suptitle("Learning curves (mean and 95% CI over seeds)")
    save(fig, out_png)
