# One rule per figure. Each lists its own plotting module as an input, so editing one figure's
# code reruns that figure only. Inputs per figure come from the module's INPUTS, read from its
# source (mgrl.figures.figure_inputs) so that parsing the Snakefile does not import matplotlib.

FIGURE_DATA = {
    "training": f"{RESULTS}/metrics/training.parquet",
    "probe_summary": f"{RESULTS}/metrics/probe_summary.parquet",
    "sensitivity": f"{RESULTS}/metrics/sensitivity.parquet",
}
FIGURE_INPUTS = {f: figure_inputs(f) for f in FIGURES}

for _figure in FIGURES:

    rule:
        """Render one figure (PNG and PDF) from the aggregated datasets."""
        name:
            f"figure_{_figure}"
        input:
            **{key: FIGURE_DATA[key] for key in FIGURE_INPUTS[_figure]},
            code=os.path.join(workflow.basedir, f"src/mgrl/figures/{_figure}.py"),
            common=os.path.join(workflow.basedir, "src/mgrl/figures/common.py"),
            analysis=ANALYSIS_CODE,
        output:
            png=report(
                f"{RESULTS}/figures/{_figure}.png",
                caption=f"../report/{_figure}.rst",
                category="Figures",
            ),
            pdf=f"{RESULTS}/figures/{_figure}.pdf",
        log:
            f"{LOGS}/figure_{_figure}.log",
        params:
            figure=_figure,
            config=CONFIG_JSON,
            data=lambda wc, input: " ".join(
                f"--{key.replace('_', '-')} {input[key]}" for key in FIGURE_DATA if key in input.keys()
            ),
        group:
            ANALYSIS_GROUPS["primary"]
        conda:
            "../../envs/mgrl.yaml"
        shell:
            "python -m mgrl figure {params.figure} --config-json {params.config:q} {params.data} "
            "--out {output.png} > {log} 2>&1"
