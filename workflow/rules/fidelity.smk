# Content fidelity (pcreg/evaluation/fidelity.py, pcreg/reporting/fidelity.py): does each method keep features present only in
# the moving image and invent features present only in the fixed one? Only for datasets with feature masks.


rule fidelity:
    wildcard_constraints:
        dataset=DATASET_RE,
    input:
        data=f"{DATA}/{{dataset}}/dataset.json",
        pairs=dataset_pairs,
        registered=lambda w: [f"results/{w.dataset}/{r}/registered.npy" for r in runs_for(w.dataset)],
    output:
        table=multiext(table_stem("fidelity", "{dataset}"), ".csv", ".md", ".tex"),
        html=report(table_stem("fidelity", "{dataset}") + ".html", caption="../report/fidelity_table.rst",
                  category="{dataset}", subcategory="6 Content fidelity"),
        figure=report(figure_path("fidelity", "{dataset}"), caption="../report/fidelity_figure.rst",
                    category="{dataset}", subcategory="6 Content fidelity"),
    params:
        data=lambda w: f"{DATA}/{w.dataset}",
        runs=lambda w: run_list_path(w.dataset),
        stem=lambda w: table_stem("fidelity", w.dataset),
        n_boot=config["stats"]["n_boot"],
        alpha=config["stats"]["alpha"],
        seed=config["seed"],
    log:
        "results/logs/fidelity/{dataset}.log",
    benchmark:
        "results/benchmarks/rules/fidelity/{dataset}.tsv"
    conda:
        "../../environment.yml"
    threads: THREADS["aggregate"]
    resources:
        mem_mb=RESOURCES["aggregate"]["mem_mb"],
        runtime=RESOURCES["aggregate"]["runtime"],
    shell:
        "python -m pcreg fidelity --dataset {wildcards.dataset} --data {params.data} --runs {params.runs}"
        " --out-stem {params.stem} --figure {output.figure} --n-boot {params.n_boot} --alpha {params.alpha}"
        " --seed {params.seed} --threads {threads} > {log} 2>&1"
