# Content fidelity (pcreg/fidelity.py, pcreg/fidelity_report.py): does each method keep features present only in
# the moving image and invent features present only in the fixed one? Only for datasets with feature masks.


rule fidelity:
    wildcard_constraints:
        dataset=DATASET_RE,
    input:
        data=f"{DATA}/{{dataset}}/dataset.json",
        pairs=dataset_pairs,
        registered=lambda w: [f"results/{w.dataset}/{r}/registered.npy" for r in runs_for(w.dataset)],
    output:
        table=multiext("results/tables/fidelity_{dataset}", ".csv", ".md", ".tex"),
        html=report("results/tables/fidelity_{dataset}.html", caption="../report/fidelity_table.rst",
                  category="{dataset}", subcategory="6 Content fidelity"),
        figure=report("results/figures/{dataset}_fidelity.png", caption="../report/fidelity_figure.rst",
                    category="{dataset}", subcategory="6 Content fidelity"),
    params:
        data=lambda w: f"{DATA}/{w.dataset}",
        runs=lambda w: eval_runs_json(w.dataset),
        stem=lambda w: f"results/tables/fidelity_{w.dataset}",
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
        "python -m pcreg fidelity --dataset {wildcards.dataset} --data {params.data} --runs {params.runs:q}"
        " --out-stem {params.stem} --figure {output.figure} --n-boot {params.n_boot} --alpha {params.alpha}"
        " --seed {params.seed} --threads {threads} > {log} 2>&1"
