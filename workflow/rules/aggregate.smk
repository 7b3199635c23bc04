# Tables, figures and the provenance manifest. Every table/figure is wrapped in report(...) so that
# `snakemake --report results/report.html` bundles them by dataset (helpers: evaluation_common.smk).


rule aggregate:
    wildcard_constraints:
        dataset=DATASET_RE,
    input:
        dataset_pairs,
    output:
        csv=table_stem("summary", "{dataset}") + ".csv",
        md=table_stem("summary", "{dataset}") + ".md",
        tex=table_stem("summary", "{dataset}") + ".tex",
        html=report(table_stem("summary", "{dataset}") + ".html", caption="../report/table.rst", category="{dataset}",
                    subcategory="1 Summary tables"),
        table1=multiext(table_stem("table1", "{dataset}"), ".csv", ".md", ".tex"),
        table1_html=report(table_stem("table1", "{dataset}") + ".html", caption="../report/table1.rst",
                         category="{dataset}", subcategory="1 Summary tables"),
        stats=multiext(table_stem("stats", "{dataset}"), ".csv", ".md", ".tex"),
        stats_html=report(table_stem("stats", "{dataset}") + ".html", caption="../report/stats.rst", category="{dataset}",
                        subcategory="2 Statistics"),
        geometry=multiext(table_stem("geometry", "{dataset}"), ".csv", ".md", ".tex"),
        geometry_html=report(table_stem("geometry", "{dataset}") + ".html", caption="../report/geometry.rst",
                           category="{dataset}", subcategory="3 Geometry"),
        curves=curves_path("{dataset}"),
    params:
        runs=lambda w: run_list_path(w.dataset),
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
        "python -m pcreg aggregate --dataset {wildcards.dataset} --runs {params.runs} --out-dir {params.out}"
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
        other=multiext(table_stem("table3", "{dataset}"), ".csv", ".md", ".tex"),
        html=report(table_stem("table3", "{dataset}") + ".html", caption="../report/table3.rst", category="{dataset}",
                  subcategory="1 Summary tables"),
    params:
        data=lambda w: f"{DATA}/{w.dataset}",
        runs=lambda w: run_list_path(w.dataset),
        stem=lambda w: table_stem("table3", w.dataset),
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
        "python -m pcreg table3 --dataset {wildcards.dataset} --data {params.data} --runs {params.runs}"
        " --out-stem {params.stem} {params.paper} > {log} 2>&1"


rule ablation:
    wildcard_constraints:
        dataset=DATASET_RE,
    input:
        dataset_pairs,
    output:
        other=multiext(table_stem("ablation", "{dataset}"), ".csv", ".md", ".tex"),
        html=report(table_stem("ablation", "{dataset}") + ".html", caption="../report/ablation.rst", category="{dataset}",
                  subcategory="1 Summary tables"),
    params:
        runs=lambda w: run_list_path(w.dataset),
        stem=lambda w: table_stem("ablation", w.dataset),
        paper=lambda w: paper_reference_arg(w.dataset),
        reference=config["stats"]["reference"],
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
        "python -m pcreg ablation --dataset {wildcards.dataset} --runs {params.runs} --out-stem {params.stem}"
        " {params.paper} --reference {params.reference} > {log} 2>&1"


rule figures:
    wildcard_constraints:
        dataset=DATASET_RE,
    input:
        data=f"{DATA}/{{dataset}}/dataset.json",
        pairs=dataset_pairs,
        registered=lambda w: [f"results/{w.dataset}/{r}/registered.npy" for r in runs_for(w.dataset)],
    output:
        report(figure_path("qualitative", "{dataset}"), caption="../report/qualitative.rst",
               category="{dataset}", subcategory="4 Figures"),
    params:
        data=lambda w: f"{DATA}/{w.dataset}",
        runs=lambda w: run_list_path(w.dataset),
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
        "python -m pcreg figures --data {params.data} --runs {params.runs} --out {output}"
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
        boxplots=report(figure_path("boxplots", "{dataset}"), caption="../report/boxplots.rst",
                        category="{dataset}", subcategory="4 Figures"),
        speed=report(figure_path("speed", "{dataset}"), caption="../report/speed.rst",
                     category="{dataset}", subcategory="4 Figures"),
        training=report(figure_path("training", "{dataset}"), caption="../report/training.rst",
                        category="{dataset}", subcategory="4 Figures"),
    params:
        runs=lambda w: run_list_path(w.dataset),
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
        "python -m pcreg plots --dataset {wildcards.dataset} --runs {params.runs} --out-dir {params.out}"
        " --only boxplots speed training > {log} 2>&1"


# FIRE success curves only where the dataset has landmarks (evaluation_common.smk: plots_of).
rule fire_success:
    wildcard_constraints:
        dataset=DATASET_RE,
    input:
        dataset_pairs,
    output:
        report(figure_path("fire_success", "{dataset}"), caption="../report/fire_success.rst",
               category="{dataset}", subcategory="3 Geometry"),
    params:
        runs=lambda w: run_list_path(w.dataset),
        out=lambda w, output: os.path.dirname(output[0]),
        direction=config["stats"]["fire_direction"],
    log:
        "results/logs/fire_success/{dataset}.log",
    benchmark:
        "results/benchmarks/rules/fire_success/{dataset}.tsv"
    conda:
        "../../environment.yml"
    threads: THREADS["aggregate"]
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python -m pcreg plots --dataset {wildcards.dataset} --runs {params.runs} --out-dir {params.out}"
        " --fire-direction {params.direction} --only fire_success > {log} 2>&1"


# The run's one-page summary, written last (it takes every table and figure as input, so `all` depends on it
# and the manifest only): the report's landing page (workflow/report/workflow.rst) and the end-of-run print.
rule summary:
    input:
        evaluation_targets(),
        [f"results/{d}/{r}/pairs.csv" for d in DATASETS for r in runs_for(d)],
        [run_list_path(d) for d in DATASETS],
    output:
        files=[f for f in summary_files() if not f.endswith(".html")],
        html=report(summary_stem() + ".html", caption="../report/summary.rst", category="0 Summary"),
        fragment=summary_files()[-1],
    params:
        datasets=" ".join(f"--dataset {d} {run_list_path(d)}" for d in DATASETS),
        tables=lambda w, input: os.path.dirname(table_stem("audit", DATASETS[0])),
        stem=lambda w, output: os.path.splitext(output.files[0])[0],
        n_boot=config["stats"]["n_boot"],
        alpha=config["stats"]["alpha"],
        seed=config["seed"],
    log:
        "results/logs/summary.log",
    benchmark:
        "results/benchmarks/rules/summary.tsv"
    conda:
        "../../environment.yml"
    threads: THREADS["aggregate"]
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python -m pcreg summary {params.datasets} --tables-dir {params.tables} --out-stem {params.stem}"
        " --fragment {output.fragment} --n-boot {params.n_boot} --alpha {params.alpha} --seed {params.seed}"
        " > {log} 2>&1"


rule manifest:
    input:
        CONFIG_SPEC,
    output:
        "results/manifest.json",
    params:
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
        "python -m pcreg manifest --config {input} --out {output} --repo {params.repo} > {log} 2>&1"
