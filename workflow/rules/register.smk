# Train learned methods, then register the test pairs shard by shard.


rule fit:
    input:
        DATA + "/{dataset}/dataset.json",
    output:
        RESULTS + "/{dataset}/{run}/model/model.json",
    params:
        data=lambda w: f"{DATA}/{w.dataset}",
        run=lambda w: json.dumps(run_spec(w.run)),
        out=lambda w: f"{RESULTS}/{w.dataset}/{w.run}/model",
        seed=config["seed"],
        device=config["device"],
    log:
        RESULTS + "/logs/fit/{dataset}/{run}.log",
    benchmark:
        RESULTS + "/benchmarks/rules/fit/{dataset}/{run}.tsv"
    threads: THREADS["fit"]
    resources:
        mem_mb=4000,
        runtime=120,
    shell:
        "{PY} -m pcreg fit --data {params.data} --run {params.run:q} --out {params.out}"
        " --seed {params.seed} --threads {threads} --device {params.device} > {log} 2>&1"


def register_inputs(w):
    inputs = [f"{DATA}/{w.dataset}/dataset.json"]
    if is_trainable(w.run):
        inputs.append(f"{RESULTS}/{w.dataset}/{w.run}/model/model.json")
    return inputs


rule register:
    input:
        register_inputs,
    output:
        RESULTS + "/{dataset}/{run}/shards/{shard}.npz",
    params:
        data=lambda w: f"{DATA}/{w.dataset}",
        run=lambda w: json.dumps(run_spec(w.run)),
        model=lambda w: f"--model {RESULTS}/{w.dataset}/{w.run}/model" if is_trainable(w.run) else "",
        shards=config["shards"],
        seed=config["seed"],
        device=config["device"],
    log:
        RESULTS + "/logs/register/{dataset}/{run}/{shard}.log",
    benchmark:
        RESULTS + "/benchmarks/rules/register/{dataset}/{run}/{shard}.tsv"
    threads: THREADS["register"]
    resources:
        mem_mb=2000,
        runtime=60,
    shell:
        "{PY} -m pcreg register --data {params.data} --run {params.run:q} --shard {wildcards.shard}"
        " --shards {params.shards} --out {output} {params.model} --seed {params.seed} --threads {threads}"
        " --device {params.device} > {log} 2>&1"


rule evaluate:
    input:
        data=DATA + "/{dataset}/dataset.json",
        shards=expand(RESULTS + "/{{dataset}}/{{run}}/shards/{shard}.npz", shard=SHARDS),
    output:
        pairs=RESULTS + "/{dataset}/{run}/pairs.csv",
        registered=RESULTS + "/{dataset}/{run}/registered.npy",
    params:
        data=lambda w: f"{DATA}/{w.dataset}",
        out=lambda w: f"{RESULTS}/{w.dataset}/{w.run}",
    log:
        RESULTS + "/logs/evaluate/{dataset}/{run}.log",
    benchmark:
        RESULTS + "/benchmarks/rules/evaluate/{dataset}/{run}.tsv"
    threads: THREADS["evaluate"]
    resources:
        mem_mb=2000,
        runtime=30,
    shell:
        "{PY} -m pcreg evaluate --data {params.data} --out {params.out} --threads {threads}"
        " {input.shards} > {log} 2>&1"
