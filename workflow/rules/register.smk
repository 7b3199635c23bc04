# Train learned methods, then register the test pairs shard by shard.
# Resources come from the config's `resources` section (and a run's own `resources`). Only the jobs of
# learned methods, rules `fit` and `register_learned`, ask for a GPU, and none when `device: cpu`
# (common.smk: job_resources); classical methods register in rule `register` on CPUs.


rule fit:
    wildcard_constraints:
        run=run_constraint(LEARNED_RUNS),
    input:
        spec=lambda w: run_spec_path(w.run),
        data=f"{DATA}/{{dataset}}/dataset.json",
    output:
        "results/{dataset}/{run}/model/model.json",
    params:
        data=lambda w: f"{DATA}/{w.dataset}",
        run=lambda w: run_spec_path(w.run),
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
        mem_mb=job_resource("fit", "mem_mb"),
        runtime=job_resource("fit", "runtime"),
        gpu=job_resource("fit", "gpu"),
        cpus_per_gpu=job_resource("fit", "cpus_per_gpu"),
        gpu_model=job_resource("fit", "gpu_model"),
    shell:
        "python -m pcreg fit --data {params.data} --run {params.run} --out {params.out}"
        " --seed {params.seed} --threads {threads} --device {params.device} > {log} 2>&1"


rule register:
    wildcard_constraints:
        run=run_constraint(LEARNED_RUNS, exclude=True),
    input:
        register_inputs,
    output:
        npz="results/{dataset}/{run}/shards/{shard}.npz",
        registered="results/{dataset}/{run}/shards/{shard}.registered.npy",
        fields="results/{dataset}/{run}/shards/{shard}.fields.npy",
    params:
        data=lambda w: f"{DATA}/{w.dataset}",
        run=lambda w: run_spec_path(w.run),
        model=lambda w: f"--model results/{w.dataset}/{w.run}/model" if is_trainable(w.run) else "",
        shards=lambda w: shards_of(w.run),
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
        mem_mb=job_resource("register", "mem_mb"),
        runtime=job_resource("register", "runtime"),
    shell:
        "python -m pcreg register --data {params.data} --run {params.run} --shard {wildcards.shard}"
        " --shards {params.shards} --out {output.npz} {params.model} --seed {params.seed} --threads {threads}"
        " --device {params.device} > {log} 2>&1"


use rule register as register_learned with:
    wildcard_constraints:
        run=run_constraint(LEARNED_RUNS),
    resources:
        mem_mb=job_resource("register", "mem_mb"),
        runtime=job_resource("register", "runtime"),
        gpu=job_resource("register", "gpu"),
        cpus_per_gpu=job_resource("register", "cpus_per_gpu"),
        gpu_model=job_resource("register", "gpu_model"),


rule evaluate:
    input:
        data=f"{DATA}/{{dataset}}/dataset.json",
        shards=lambda w: [f"results/{w.dataset}/{w.run}/shards/{s}.npz" for s in range(shards_of(w.run))],
        arrays=lambda w: [f"results/{w.dataset}/{w.run}/shards/{s}.{a}.npy" for s in range(shards_of(w.run))
                          for a in ("registered", "fields")],
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
        mem_mb=RESOURCES["evaluate"]["mem_mb"],
        runtime=RESOURCES["evaluate"]["runtime"],
    shell:
        "python -m pcreg evaluate --data {params.data} --out {params.out} --threads {threads}"
        " {input.shards} > {log} 2>&1"
