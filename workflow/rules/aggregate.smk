# Tables, figures and the provenance manifest.


rule aggregate:
    input:
        lambda w: [f"results/{w.dataset}/{r}/pairs.csv" for r in runs_for(w.dataset)],
    output:
        csv="results/tables/{dataset}.csv",
        md=report("results/tables/{dataset}.md", caption="../report/table.rst", category="{dataset}",
                  subcategory="Tables"),
        tex="results/tables/{dataset}.tex",
    params:
        runs=lambda w: runs_json(w.dataset),
        stem=lambda w: f"results/tables/{w.dataset}",
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
        "python -m pcreg aggregate --dataset {wildcards.dataset} --runs {params.runs:q} --out-stem {params.stem}"
        " > {log} 2>&1"


rule figures:
    input:
        data=f"{DATA}/{{dataset}}/dataset.json",
        pairs=lambda w: [f"results/{w.dataset}/{r}/pairs.csv" for r in runs_for(w.dataset)],
        registered=lambda w: [f"results/{w.dataset}/{r}/registered.npy" for r in runs_for(w.dataset)],
    output:
        report("results/figures/{dataset}_qualitative.png", caption="../report/qualitative.rst",
               category="{dataset}", subcategory="Figures"),
    params:
        data=lambda w: f"{DATA}/{w.dataset}",
        runs=lambda w: runs_json(w.dataset),
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
