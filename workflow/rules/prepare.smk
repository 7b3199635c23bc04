# Prepare (generate or download) each dataset into the shared on-disk format (pcreg/datasets/format.py).


rule prepare:
    input:
        dataset_source_files,
    output:
        f"{DATA}/{{dataset}}/dataset.json",
    params:
        spec=lambda w: json.dumps({k: config["datasets"][w.dataset][k] for k in ("type", "params")}),
        content=dataset_fingerprint,
        out=lambda w: f"{DATA}/{w.dataset}",
        seed=config["seed"],
    log:
        "results/logs/prepare/{dataset}.log",
    benchmark:
        "results/benchmarks/rules/prepare/{dataset}.tsv"
    conda:
        "../../environment.yml"
    threads: THREADS["prepare"]
    resources:
        mem_mb=RESOURCES["prepare"]["mem_mb"],
        runtime=RESOURCES["prepare"]["runtime"],
    shell:
        "python -m pcreg prepare --name {wildcards.dataset} --spec {params.spec:q} --out {params.out}"
        " --seed {params.seed} --threads {threads} > {log} 2>&1"
