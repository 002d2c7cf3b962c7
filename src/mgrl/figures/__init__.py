"""One module per figure; each exposes ``INPUTS`` (the data it reads) and ``plot(data, out_png)``.

Keeping each figure in its own file lets Snakemake rebuild exactly one figure when its code changes:
the figure's rule lists its module (and ``common.py``) as inputs.
"""

FIGURES = ("variance", "bias", "variance_reduction", "learning_curves", "meta_parameters",
           "final_return", "gamma_sensitivity")
