# Prepare (generate or download) each dataset into the shared on-disk format (pcreg/datasets/format.py).


rule prepare:
    input:
        lambda w: dataset_spec_path(w.dataset),
    output:
        f"{DATA}/{{dataset}}/dataset.json",
    params:
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
        "python -m pcreg prepare --name {wildcards.dataset} --spec {input} --out {params.out}"
        " --seed {params.seed} --threads {threads} > {log} 2>&1"
