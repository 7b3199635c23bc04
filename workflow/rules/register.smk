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
        f"{RES}/{{dataset}}/{{run}}/model/model.json",
    params:
        code=method_code("method"),
        data=lambda w: f"{DATA}/{w.dataset}",
        run=lambda w: run_spec_path(w.run),
        out=lambda w: f"{result_dir(w.dataset, w.run)}/model",
        seed=config["seed"],
        device=config["device"],
    log:
        f"{LOGS}/fit/{{dataset}}/{{run}}.log",
    benchmark:
        f"{BENCH}/fit/{{dataset}}/{{run}}.tsv"
    conda:
        "../../environment.yml"
    threads: THREADS["fit"]
    # Training runs are the longest jobs: started first, they do not leave one core busy alone at the end while
    # the short classical jobs fill the other core around them.
    priority: 10
    resources:
        mem_mb=job_resource("fit", "mem_mb"),
        runtime=job_resource("fit", "runtime"),
        gpu=job_resource("fit", "gpu"),
        cpus_per_gpu=job_resource("fit", "cpus_per_gpu"),
        gpu_model=job_resource("fit", "gpu_model"),
    shell:
        "python -m pcreg fit --data {params.data:q} --run {params.run:q} --out {params.out:q}"
        " --seed {params.seed:q} --threads {threads} --device {params.device:q} > {log:q} 2>&1"


rule register:
    wildcard_constraints:
        run=run_constraint(LEARNED_RUNS, exclude=True),
    input:
        register_inputs,
    output:
        npz=f"{RES}/{{dataset}}/{{run}}/shards/{{shard}}.npz",
        registered=f"{RES}/{{dataset}}/{{run}}/shards/{{shard}}.registered.npy",
        fields=f"{RES}/{{dataset}}/{{run}}/shards/{{shard}}.fields.npy",
    params:
        code=method_code("method"),
        content=precomputed_content,
        data=lambda w: f"{DATA}/{w.dataset}",
        run=lambda w: run_spec_path(w.run),
        model=model_arg,
        shards=lambda w: shards_of(w.run),
        seed=config["seed"],
        device=config["device"],
    log:
        f"{LOGS}/register/{{dataset}}/{{run}}/{{shard}}.log",
    benchmark:
        f"{BENCH}/register/{{dataset}}/{{run}}/{{shard}}.tsv"
    conda:
        "../../environment.yml"
    threads: THREADS["register"]
    resources:
        mem_mb=job_resource("register", "mem_mb"),
        runtime=job_resource("register", "runtime"),
    shell:
        "python -m pcreg register --data {params.data:q} --run {params.run:q} --shard {wildcards.shard:q}"
        " --shards {params.shards:q} --out {output.npz:q} --model={params.model:q} --seed {params.seed:q}"
        " --threads {threads} --device {params.device:q} > {log:q} 2>&1"


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
        shards=lambda w: [f"{result_dir(w.dataset, w.run)}/shards/{s}.npz" for s in range(shards_of(w.run))],
        arrays=lambda w: [f"{result_dir(w.dataset, w.run)}/shards/{s}.{a}.npy" for s in range(shards_of(w.run))
                          for a in ("registered", "fields")],
    output:
        pairs=f"{RES}/{{dataset}}/{{run}}/pairs.csv",
        registered=f"{RES}/{{dataset}}/{{run}}/registered.npy",
    params:
        code=_CODE["evaluate"],
        data=lambda w: f"{DATA}/{w.dataset}",
        out=lambda w: result_dir(w.dataset, w.run),
    log:
        f"{LOGS}/evaluate/{{dataset}}/{{run}}.log",
    benchmark:
        f"{BENCH}/evaluate/{{dataset}}/{{run}}.tsv"
    conda:
        "../../environment.yml"
    threads: THREADS["evaluate"]
    resources:
        mem_mb=RESOURCES["evaluate"]["mem_mb"],
        runtime=RESOURCES["evaluate"]["runtime"],
    shell:
        "python -m pcreg evaluate --data {params.data:q} --out {params.out:q} --threads {threads}"
        " {input.shards:q} > {log:q} 2>&1"
