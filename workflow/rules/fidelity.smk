# Content fidelity (pcreg/evaluation/fidelity.py, pcreg/reporting/fidelity.py): does each method keep features present only in
# the moving image and invent features present only in the fixed one? Only for datasets with feature masks.


rule fidelity:
    wildcard_constraints:
        dataset=DATASET_RE,
    input:
        data=f"{DATA}/{{dataset}}/dataset.json",
        pairs=dataset_pairs,
        registered=lambda w: [f"{result_dir(w.dataset, r)}/registered.npy" for r in runs_for(w.dataset)],
    output:
        table=multiext(table_stem("fidelity", "{dataset}", TABLES), ".csv", ".md", ".tex"),
        html=report(table_stem("fidelity", "{dataset}", TABLES) + ".html", caption="../report/fidelity_table.rst",
                  category="{dataset}", subcategory="6 Content fidelity"),
        figure=report(figure_path("fidelity", "{dataset}", FIGURES), caption="../report/fidelity_figure.rst",
                    category="{dataset}", subcategory="6 Content fidelity"),
    params:
        data=lambda w: f"{DATA}/{w.dataset}",
        runs=lambda w: run_list_path(w.dataset),
        code=_CODE["report"],
        stem=lambda w: table_stem("fidelity", w.dataset, TABLES),
        n_boot=config["stats"]["n_boot"],
        alpha=config["stats"]["alpha"],
        seed=config["seed"],
    log:
        f"{LOGS}/fidelity/{{dataset}}.log",
    benchmark:
        f"{BENCH}/fidelity/{{dataset}}.tsv"
    conda:
        "../../environment.yml"
    threads: THREADS["aggregate"]
    resources:
        mem_mb=RESOURCES["aggregate"]["mem_mb"],
        runtime=RESOURCES["aggregate"]["runtime"],
    shell:
        "python -m pcreg fidelity --dataset {wildcards.dataset:q} --data {params.data:q} --runs {params.runs:q}"
        " --out-stem {params.stem:q} --figure {output.figure:q} --n-boot {params.n_boot:q} --alpha {params.alpha:q}"
        " --seed {params.seed:q} --threads {threads} > {log:q} 2>&1"
