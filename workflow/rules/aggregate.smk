# Tables, figures and the provenance manifest. Every table/figure is wrapped in report(...) so that
# `snakemake --report <results_dir>/report.html` bundles them by dataset (helpers: evaluation_common.smk).


rule aggregate:
    wildcard_constraints:
        dataset=DATASET_RE,
    input:
        pairs=dataset_pairs,
        data=f"{DATA}/{{dataset}}/dataset.json",
    output:
        csv=table_stem("summary", "{dataset}", TABLES) + ".csv",
        md=table_stem("summary", "{dataset}", TABLES) + ".md",
        tex=table_stem("summary", "{dataset}", TABLES) + ".tex",
        html=report(table_stem("summary", "{dataset}", TABLES) + ".html", caption="../report/table.rst", category="{dataset}",
                    subcategory="1 Summary tables"),
        table1=multiext(table_stem("table1", "{dataset}", TABLES), ".csv", ".md", ".tex"),
        table1_html=report(table_stem("table1", "{dataset}", TABLES) + ".html", caption="../report/table1.rst",
                         category="{dataset}", subcategory="1 Summary tables"),
        stats=multiext(table_stem("stats", "{dataset}", TABLES), ".csv", ".md", ".tex"),
        stats_html=report(table_stem("stats", "{dataset}", TABLES) + ".html", caption="../report/stats.rst", category="{dataset}",
                        subcategory="2 Statistics"),
        geometry=multiext(table_stem("geometry", "{dataset}", TABLES), ".csv", ".md", ".tex"),
        geometry_html=report(table_stem("geometry", "{dataset}", TABLES) + ".html", caption="../report/geometry.rst",
                           category="{dataset}", subcategory="3 Geometry"),
        curves=curves_path("{dataset}", TABLES),
    params:
        code=_CODE["report"],
        runs=lambda w: run_list_path(w.dataset),
        data=lambda w: f"{DATA}/{w.dataset}",
        out=lambda w, output: os.path.dirname(output.csv),
        paper=lambda w: paper_reference_arg(w.dataset),
        seed=config["seed"],
        n_boot=config["stats"]["n_boot"],
        alpha=config["stats"]["alpha"],
        reference=config["stats"]["reference"],
        direction=config["stats"]["fire_direction"],
    log:
        f"{LOGS}/aggregate/{{dataset}}.log",
    benchmark:
        f"{BENCH}/aggregate/{{dataset}}.tsv"
    conda:
        "../../environment.yml"
    threads: THREADS["aggregate"]
    resources:
        mem_mb=RESOURCES["aggregate"]["mem_mb"],
        runtime=RESOURCES["aggregate"]["runtime"],
    shell:
        "python -m pcreg aggregate --dataset {wildcards.dataset:q} --runs {params.runs:q} --data {params.data:q}"
        " --out-dir {params.out:q}"
        " --paper-reference={params.paper:q} --seed {params.seed:q} --n-boot {params.n_boot:q} --alpha {params.alpha:q}"
        " --reference {params.reference:q} --fire-direction {params.direction:q} > {log:q} 2>&1"


rule table3:
    wildcard_constraints:
        dataset=DATASET_RE,
    input:
        data=f"{DATA}/{{dataset}}/dataset.json",
        pairs=dataset_pairs,
        registered=lambda w: [f"{result_dir(w.dataset, r)}/registered.npy" for r in runs_for(w.dataset)],
    output:
        other=multiext(table_stem("table3", "{dataset}", TABLES), ".csv", ".md", ".tex"),
        html=report(table_stem("table3", "{dataset}", TABLES) + ".html", caption="../report/table3.rst", category="{dataset}",
                  subcategory="1 Summary tables"),
    params:
        data=lambda w: f"{DATA}/{w.dataset}",
        code=_CODE["report"],
        runs=lambda w: run_list_path(w.dataset),
        stem=lambda w: table_stem("table3", w.dataset, TABLES),
        paper=lambda w: paper_reference_arg(w.dataset),
    log:
        f"{LOGS}/table3/{{dataset}}.log",
    benchmark:
        f"{BENCH}/table3/{{dataset}}.tsv"
    conda:
        "../../environment.yml"
    threads: THREADS["aggregate"]
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m pcreg table3 --dataset {wildcards.dataset:q} --data {params.data:q} --runs {params.runs:q}"
        " --out-stem {params.stem:q} --paper-reference={params.paper:q} > {log:q} 2>&1"


rule ablation:
    wildcard_constraints:
        dataset=DATASET_RE,
    input:
        dataset_pairs,
    output:
        other=multiext(table_stem("ablation", "{dataset}", TABLES), ".csv", ".md", ".tex"),
        html=report(table_stem("ablation", "{dataset}", TABLES) + ".html", caption="../report/ablation.rst", category="{dataset}",
                  subcategory="1 Summary tables"),
    params:
        code=_CODE["report"],
        runs=lambda w: run_list_path(w.dataset),
        stem=lambda w: table_stem("ablation", w.dataset, TABLES),
        paper=lambda w: paper_reference_arg(w.dataset),
        reference=config["stats"]["reference"],
    log:
        f"{LOGS}/ablation/{{dataset}}.log",
    benchmark:
        f"{BENCH}/ablation/{{dataset}}.tsv"
    conda:
        "../../environment.yml"
    threads: THREADS["aggregate"]
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python -m pcreg ablation --dataset {wildcards.dataset:q} --runs {params.runs:q} --out-stem {params.stem:q}"
        " --paper-reference={params.paper:q} --reference {params.reference:q} > {log:q} 2>&1"


rule figures:
    wildcard_constraints:
        dataset=DATASET_RE,
    input:
        data=f"{DATA}/{{dataset}}/dataset.json",
        pairs=dataset_pairs,
        registered=lambda w: [f"{result_dir(w.dataset, r)}/registered.npy" for r in runs_for(w.dataset)],
    output:
        report(figure_path("qualitative", "{dataset}", FIGURES), caption="../report/qualitative.rst",
               category="{dataset}", subcategory="4 Figures"),
    params:
        data=lambda w: f"{DATA}/{w.dataset}",
        code=_CODE["report"],
        runs=lambda w: run_list_path(w.dataset),
        pairs=config["figures"]["qualitative_pairs"],
    log:
        f"{LOGS}/figures/{{dataset}}.log",
    benchmark:
        f"{BENCH}/figures/{{dataset}}.tsv"
    conda:
        "../../environment.yml"
    threads: THREADS["aggregate"]
    resources:
        mem_mb=RESOURCES["aggregate"]["mem_mb"],
        runtime=RESOURCES["aggregate"]["runtime"],
    shell:
        "python -m pcreg figures --data {params.data:q} --runs {params.runs:q} --out {output:q}"
        " --pairs {params.pairs:q} > {log:q} 2>&1"


rule plots:
    wildcard_constraints:
        dataset=DATASET_RE,
    input:
        pairs=dataset_pairs,
        # Learned methods write model/train_log.csv next to model.json (plotted when present).
        models=lambda w: [model_json(w.dataset, r) for r in runs_for(w.dataset)
                          if is_trainable(r)],
    output:
        boxplots=report(figure_path("boxplots", "{dataset}", FIGURES), caption="../report/boxplots.rst",
                        category="{dataset}", subcategory="4 Figures"),
        speed=report(figure_path("speed", "{dataset}", FIGURES), caption="../report/speed.rst",
                     category="{dataset}", subcategory="4 Figures"),
        training=report(figure_path("training", "{dataset}", FIGURES), caption="../report/training.rst",
                        category="{dataset}", subcategory="4 Figures"),
    params:
        code=_CODE["report"],
        runs=lambda w: run_list_path(w.dataset),
        out=lambda w, output: os.path.dirname(output.boxplots),
        direction=config["stats"]["fire_direction"],
    log:
        f"{LOGS}/plots/{{dataset}}.log",
    benchmark:
        f"{BENCH}/plots/{{dataset}}.tsv"
    conda:
        "../../environment.yml"
    threads: THREADS["aggregate"]
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python -m pcreg plots --dataset {wildcards.dataset:q} --runs {params.runs:q} --out-dir {params.out:q}"
        " --only boxplots speed training > {log:q} 2>&1"


# FIRE success curves only where the dataset has landmarks (evaluation_common.smk: plots_of).
rule fire_success:
    wildcard_constraints:
        dataset=DATASET_RE,
    input:
        dataset_pairs,
    output:
        report(figure_path("fire_success", "{dataset}", FIGURES), caption="../report/fire_success.rst",
               category="{dataset}", subcategory="3 Geometry"),
    params:
        code=_CODE["report"],
        runs=lambda w: run_list_path(w.dataset),
        out=lambda w, output: os.path.dirname(output[0]),
        direction=config["stats"]["fire_direction"],
    log:
        f"{LOGS}/fire_success/{{dataset}}.log",
    benchmark:
        f"{BENCH}/fire_success/{{dataset}}.tsv"
    conda:
        "../../environment.yml"
    threads: THREADS["aggregate"]
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python -m pcreg plots --dataset {wildcards.dataset:q} --runs {params.runs:q} --out-dir {params.out:q}"
        " --fire-direction {params.direction:q} --only fire_success > {log:q} 2>&1"


# The run's one-page summary, written last (it takes every table and figure as input, so `all` depends on it
# and the manifest only): the report's landing page (workflow/report/workflow.rst) and the end-of-run print.
rule summary:
    input:
        evaluation_targets(),
        [pairs_csv(d, r) for d in DATASETS for r in runs_for(d)],
        [run_list_path(d) for d in DATASETS],
    output:
        files=[f for f in summary_files(RES) if not f.endswith(".html")],
        html=report(summary_stem(RES) + ".html", caption="../report/summary.rst", category="0 Summary"),
        fragment=summary_files(RES)[-1],
    params:
        code=_CODE["report"],
        # a list: each element is quoted on its own ({params.datasets:q})
        datasets=[arg for d in DATASETS for arg in ("--dataset", d, run_list_path(d))],
        tables=lambda w, input: TABLES,
        stem=lambda w, output: os.path.splitext(output.files[0])[0],
        n_boot=config["stats"]["n_boot"],
        alpha=config["stats"]["alpha"],
        seed=config["seed"],
    log:
        f"{LOGS}/summary.log",
    benchmark:
        f"{BENCH}/summary.tsv"
    conda:
        "../../environment.yml"
    threads: THREADS["aggregate"]
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python -m pcreg summary {params.datasets:q} --tables-dir {params.tables:q} --out-stem {params.stem:q}"
        " --fragment {output.fragment:q} --n-boot {params.n_boot:q} --alpha {params.alpha:q} --seed {params.seed:q}"
        " > {log:q} 2>&1"


rule manifest:
    input:
        config=CONFIG_SPEC,
        code=CODE_SPEC,
    output:
        MANIFEST,
    params:
        repo=workflow.basedir,
    log:
        f"{LOGS}/manifest.log",
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        mem_mb=RESOURCES["aggregate"]["mem_mb"],
        runtime=RESOURCES["aggregate"]["runtime"],
    shell:
        "python -m pcreg manifest --config {input.config:q} --code {input.code:q} --out {output:q}"
        " --repo {params.repo:q} > {log:q} 2>&1"
