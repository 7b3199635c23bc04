# Train learned methods, then register the test pairs shard by shard.


rule fit:
    input:
        f"{DATA}/{{dataset}}/dataset.json",
    output:
        "results/{dataset}/{run}/model/model.json",
    params:
        data=lambda w: f"{DATA}/{w.dataset}",
        run=lambda w: json.dumps(run_spec(w.run)),
        out=lambda w: f"results/{w.dataset}/{w.run}/model",
        seed=config["seed"],
        device=config["device"],
    log:
        "results/logs/fit/{dataset}/{run}.log",
    benchmark:
        "results/benchmarks/rules/fit/{dataset}/{run}.tsv"
    conda:
        "../../environment.yml"
    threads: THREADS["fit"]
    resources:
        mem_mb=4000,
        runtime=120,
    shell:
        "python -m pcreg fit --data {params.data} --run {params.run:q} --out {params.out}"
        " --seed {params.seed} --threads {threads} --device {params.device} > {log} 2>&1"


rule register:
    input:
        register_inputs,
    output:
        "results/{dataset}/{run}/shards/{shard}.npz",
    params:
        data=lambda w: f"{DATA}/{w.dataset}",
        run=lambda w: json.dumps(run_spec(w.run)),
        model=lambda w: f"--model results/{w.dataset}/{w.run}/model" if is_trainable(w.run) else "",
        shards=config["shards"],
        seed=config["seed"],
        device=config["device"],
    log:
        "results/logs/register/{dataset}/{run}/{shard}.log",
    benchmark:
        "results/benchmarks/rules/register/{dataset}/{run}/{shard}.tsv"
    conda:
        "../../environment.yml"
    threads: THREADS["register"]
    resources:
        mem_mb=2000,
        runtime=60,
    shell:
        "python -m pcreg register --data {params.data} --run {params.run:q} --shard {wildcards.shard}"
        " --shards {params.shards} --out {output} {params.model} --seed {params.seed} --threads {threads}"
        " --device {params.device} > {log} 2>&1"


rule evaluate:
    input:
        data=f"{DATA}/{{dataset}}/dataset.json",
        shards=expand("results/{{dataset}}/{{run}}/shards/{shard}.npz", shard=SHARDS),
    output:
        pairs="results/{dataset}/{run}/pairs.csv",
        registered="results/{dataset}/{run}/registered.npy",
    params:
        data=lambda w: f"{DATA}/{w.dataset}",
        out=lambda w: f"results/{w.dataset}/{w.run}",
    log:
        "results/logs/evaluate/{dataset}/{run}.log",
    benchmark:
        "results/benchmarks/rules/evaluate/{dataset}/{run}.tsv"
    conda:
        "../../environment.yml"
    threads: THREADS["evaluate"]
    resources:
        mem_mb=2000,
        runtime=30,
    shell:
        "python -m pcreg evaluate --data {params.data} --out {params.out} --threads {threads}"
        " {input.shards} > {log} 2>&1"
