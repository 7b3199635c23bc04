# Tables, figures and the provenance manifest.


rule aggregate:
    input:
        lambda w: [f"{RESULTS}/{w.dataset}/{r}/pairs.csv" for r in runs_for(w.dataset)],
    output:
        csv=RESULTS + "/tables/{dataset}.csv",
        md=report(RESULTS + "/tables/{dataset}.md", caption="../report/table.rst", category="{dataset}",
                  subcategory="Tables"),
        tex=RESULTS + "/tables/{dataset}.tex",
    params:
        runs=lambda w: runs_json(w.dataset),
        stem=lambda w: f"{RESULTS}/tables/{w.dataset}",
    log:
        RESULTS + "/logs/aggregate/{dataset}.log",
    benchmark:
        RESULTS + "/benchmarks/rules/aggregate/{dataset}.tsv"
    threads: THREADS["aggregate"]
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "{PY} -m pcreg aggregate --dataset {wildcards.dataset} --runs {params.runs:q} --out-stem {params.stem}"
        " > {log} 2>&1"


rule figures:
    input:
        data=DATA + "/{dataset}/dataset.json",
        pairs=lambda w: [f"{RESULTS}/{w.dataset}/{r}/pairs.csv" for r in runs_for(w.dataset)],
        registered=lambda w: [f"{RESULTS}/{w.dataset}/{r}/registered.npy" for r in runs_for(w.dataset)],
    output:
        report(RESULTS + "/figures/{dataset}_qualitative.png", caption="../report/qualitative.rst",
               category="{dataset}", subcategory="Figures"),
    params:
        data=lambda w: f"{DATA}/{w.dataset}",
        runs=lambda w: runs_json(w.dataset),
        pairs=config["figures"]["qualitative_pairs"],
    log:
        RESULTS + "/logs/figures/{dataset}.log",
    benchmark:
        RESULTS + "/benchmarks/rules/figures/{dataset}.tsv"
    threads: THREADS["aggregate"]
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "{PY} -m pcreg figures --data {params.data} --runs {params.runs:q} --out {output}"
        " --pairs {params.pairs} > {log} 2>&1"


rule manifest:
    output:
        RESULTS + "/manifest.json",
    params:
        config=json.dumps(config, sort_keys=True),
        repo=workflow.basedir,
    log:
        RESULTS + "/logs/manifest.log",
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    shell:
        "{PY} -m pcreg manifest --config {params.config:q} --out {output} --repo {params.repo} > {log} 2>&1"
