# Prepare (generate or download) each dataset into the shared on-disk format (pcreg/datasets/format.py).


rule prepare:
    input:
        spec=lambda w: dataset_spec_path(w.dataset),
        sources=dataset_source_files,
    output:
        f"{DATA}/{{dataset}}/dataset.json",
    params:
        content=dataset_fingerprint,
        code=_CODE["prepare"],
        out=lambda w: f"{DATA}/{w.dataset}",
        seed=config["seed"],
    log:
        f"{LOGS}/prepare/{{dataset}}.log",
    benchmark:
        f"{BENCH}/prepare/{{dataset}}.tsv"
    conda:
        "../../environment.yml"
    threads: THREADS["prepare"]
    resources:
        mem_mb=RESOURCES["prepare"]["mem_mb"],
        runtime=RESOURCES["prepare"]["runtime"],
    shell:
        "python -m pcreg prepare --name {wildcards.dataset:q} --spec {input.spec:q} --out {params.out:q}"
        " --seed {params.seed:q} --threads {threads} > {log:q} 2>&1"
