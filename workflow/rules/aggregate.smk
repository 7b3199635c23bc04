# Tables, figures and the provenance manifest. Every table/figure is wrapped in report(...) so that
# `snakemake --report results/report.html` bundles them by dataset (helpers: evaluation_common.smk).


rule aggregate:
    wildcard_constraints:
        dataset=DATASET_RE,
    input:
        dataset_pairs,
    output:
        csv="results/tables/{dataset}.csv",
        md="results/tables/{dataset}.md",
        tex="results/tables/{dataset}.tex",
        html=report("results/tables/{dataset}.html", caption="../report/table.rst", category="{dataset}",
                    subcategory="1 Summary tables"),
        table1=multiext("results/tables/table1_{dataset}", ".csv", ".md", ".tex"),
        table1_html=report("results/tables/table1_{dataset}.html", caption="../report/table1.rst",
                         category="{dataset}", subcategory="1 Summary tables"),
        stats=multiext("results/tables/stats_{dataset}", ".csv", ".md", ".tex"),
        stats_html=report("results/tables/stats_{dataset}.html", caption="../report/stats.rst", category="{dataset}",
                        subcategory="2 Statistics"),
        geometry=multiext("results/tables/geometry_{dataset}", ".csv", ".md", ".tex"),
        geometry_html=report("results/tables/geometry_{dataset}.html", caption="../report/geometry.rst",
                           category="{dataset}", subcategory="3 Geometry"),
        curves="results/tables/fire_curves_{dataset}.csv",
    params:
        runs=lambda w: eval_runs_json(w.dataset),
        out=lambda w, output: os.path.dirname(output.csv),
        paper=lambda w: paper_reference_arg(w.dataset),
        seed=config["seed"],
        n_boot=config["stats"]["n_boot"],
        alpha=config["stats"]["alpha"],
        reference=config["stats"]["reference"],
        direction=config["stats"]["fire_direction"],
    log:
        "results/logs/aggregate/{dataset}.log",
    benchmark:
        "results/benchmarks/rules/aggregate/{dataset}.tsv"
    conda:
        "../../environment.yml"
    threads: THREADS["aggregate"]
    resources:
        mem_mb=RESOURCES["aggregate"]["mem_mb"],
        runtime=RESOURCES["aggregate"]["runtime"],
    shell:
        "python -m pcreg aggregate --dataset {wildcards.dataset} --runs {params.runs:q} --out-dir {params.out}"
        " {params.paper} --seed {params.seed} --n-boot {params.n_boot} --alpha {params.alpha}"
        " --reference {params.reference} --fire-direction {params.direction} > {log} 2>&1"


rule table3:
    wildcard_constraints:
        dataset=DATASET_RE,
    input:
        data=f"{DATA}/{{dataset}}/dataset.json",
        pairs=dataset_pairs,
        registered=lambda w: [f"results/{w.dataset}/{r}/registered.npy" for r in runs_for(w.dataset)],
    output:
        other=multiext("results/tables/table3_{dataset}", ".csv", ".md", ".tex"),
        html=report("results/tables/table3_{dataset}.html", caption="../report/table3.rst", category="{dataset}",
                  subcategory="1 Summary tables"),
    params:
        data=lambda w: f"{DATA}/{w.dataset}",
        runs=lambda w: eval_runs_json(w.dataset),
        stem=lambda w: f"results/tables/table3_{w.dataset}",
        paper=lambda w: paper_reference_arg(w.dataset),
    log:
        "results/logs/table3/{dataset}.log",
    benchmark:
        "results/benchmarks/rules/table3/{dataset}.tsv"
    conda:
        "../../environment.yml"
    threads: THREADS["aggregate"]
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m pcreg table3 --dataset {wildcards.dataset} --data {params.data} --runs {params.runs:q}"
        " --out-stem {params.stem} {params.paper} > {log} 2>&1"


rule ablation:
    wildcard_constraints:
        dataset=DATASET_RE,
    input:
        dataset_pairs,
    output:
        other=multiext("results/tables/ablation_{dataset}", ".csv", ".md", ".tex"),
        html=report("results/tables/ablation_{dataset}.html", caption="../report/ablation.rst", category="{dataset}",
                  subcategory="1 Summary tables"),
    params:
        runs=lambda w: eval_runs_json(w.dataset),
        stem=lambda w: f"results/tables/ablation_{w.dataset}",
        paper=lambda w: paper_reference_arg(w.dataset),
    log:
        "results/logs/ablation/{dataset}.log",
    benchmark:
        "results/benchmarks/rules/ablation/{dataset}.tsv"
    conda:
        "../../environment.yml"
    threads: THREADS["aggregate"]
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python -m pcreg ablation --dataset {wildcards.dataset} --runs {params.runs:q} --out-stem {params.stem}"
        " {params.paper} > {log} 2>&1"


rule figures:
    wildcard_constraints:
        dataset=DATASET_RE,
    input:
        data=f"{DATA}/{{dataset}}/dataset.json",
        pairs=dataset_pairs,
        registered=lambda w: [f"results/{w.dataset}/{r}/registered.npy" for r in runs_for(w.dataset)],
    output:
        report("results/figures/{dataset}_qualitative.png", caption="../report/qualitative.rst",
               category="{dataset}", subcategory="4 Figures"),
    params:
        data=lambda w: f"{DATA}/{w.dataset}",
        runs=lambda w: eval_runs_json(w.dataset),
        pairs=config["figures"]["qualitative_pairs"],
    log:
        "results/logs/figures/{dataset}.log",
    benchmark:
        "results/benchmarks/rules/figures/{dataset}.tsv"
    conda:
        "../../environment.yml"
    threads: THREADS["aggregate"]
    resources:
        mem_mb=RESOURCES["aggregate"]["mem_mb"],
        runtime=RESOURCES["aggregate"]["runtime"],
    shell:
        "python -m pcreg figures --data {params.data} --runs {params.runs:q} --out {output}"
        " --pairs {params.pairs} > {log} 2>&1"


rule plots:
    wildcard_constraints:
        dataset=DATASET_RE,
    input:
        pairs=dataset_pairs,
        # Learned methods write model/train_log.csv next to model.json (plotted when present).
        models=lambda w: [f"results/{w.dataset}/{r}/model/model.json" for r in runs_for(w.dataset)
                          if is_trainable(r)],
    output:
        boxplots=report("results/figures/{dataset}_boxplots.png", caption="../report/boxplots.rst",
                        category="{dataset}", subcategory="4 Figures"),
        speed=report("results/figures/{dataset}_speed.png", caption="../report/speed.rst",
                     category="{dataset}", subcategory="4 Figures"),
        fire=report("results/figures/{dataset}_fire_success.png", caption="../report/fire_success.rst",
                    category="{dataset}", subcategory="3 Geometry"),
        training=report("results/figures/{dataset}_training.png", caption="../report/training.rst",
                        category="{dataset}", subcategory="4 Figures"),
    params:
        runs=lambda w: eval_runs_json(w.dataset),
        out=lambda w, output: os.path.dirname(output.boxplots),
        direction=config["stats"]["fire_direction"],
    log:
        "results/logs/plots/{dataset}.log",
    benchmark:
        "results/benchmarks/rules/plots/{dataset}.tsv"
    conda:
        "../../environment.yml"
    threads: THREADS["aggregate"]
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python -m pcreg plots --dataset {wildcards.dataset} --runs {params.runs:q} --out-dir {params.out}"
        " --fire-direction {params.direction} > {log} 2>&1"


rule manifest:
    output:
        "results/manifest.json",
    params:
        config=json.dumps(config, sort_keys=True),
        repo=workflow.basedir,
    log:
        "results/logs/manifest.log",
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        mem_mb=RESOURCES["aggregate"]["mem_mb"],
        runtime=RESOURCES["aggregate"]["runtime"],
    shell:
        "python -m pcreg manifest --config {params.config:q} --out {output} --repo {params.repo} > {log} 2>&1"
