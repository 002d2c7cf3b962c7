# Multi-step and mixing meta-gradients on Jumanji Snake: every result from config.yaml. All outputs
# of an experiment lie under results/<name>/ (its config's `name`; config.yaml's is `default`).
#   snakemake --cores 2                                       # everything
#   snakemake --cores 2 results/default/figures/variance.png  # one figure, and only what it needs
#   snakemake --report results/default/report.html            # HTML report: figures and tables
#   snakemake --cores 2 --configfile config/paper.yaml        # another experiment: results/paper/
#   snakemake --cores 2 replicate                             # the claims again on disjoint seeds
from snakemake.utils import min_version

min_version("9.0")


report: "workflow/report/workflow.rst"


# config.yaml is the default; a --configfile given on the command line replaces it (rather than
# being merged into it), also inside cluster jobs, which re-read this file without the flags.
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"



include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/probe.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/sensitivity.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/replication.smk"


rule all:
    """Every figure and table of the experiment."""
    input:
        final_outputs(),
    default_target: True
