# Sanity audit: re-run each method with a blank and with another pair's moving image (pcreg/evaluation/audit.py),
# then tabulate every method's drops next to the fixed-copy oracle.


rule audit:
    wildcard_constraints:
        dataset=DATASET_RE,
        run=run_constraint(LEARNED_RUNS, exclude=True),
    input:
        register_inputs,
    output:
        "results/{dataset}/{run}/audit.csv",
    params:
        data=lambda w: f"{DATA}/{w.dataset}",
        run=lambda w: run_spec_path(w.run),
        model=lambda w: f"--model results/{w.dataset}/{w.run}/model" if is_trainable(w.run) else "",
        pairs=config["audit"]["pairs"],
        blank=config["audit"]["blank"],
        seed=config["seed"],
        device=config["device"],
    log:
        "results/logs/audit/{dataset}/{run}.log",
    benchmark:
        "results/benchmarks/rules/audit/{dataset}/{run}.tsv"
    conda:
        "../../environment.yml"
    threads: THREADS["register"]
    resources:
        mem_mb=2000,
        runtime=30,
    shell:
        "python -m pcreg audit --data {params.data} --run {params.run} --out {output} --pairs {params.pairs}"
        " --blank {params.blank} {params.model} --seed {params.seed} --threads {threads} --device {params.device}"
        " > {log} 2>&1"


# Learned methods' audit is GPU inference like their registration: same resources as register_learned.
use rule audit as audit_learned with:
    wildcard_constraints:
        dataset=DATASET_RE,
        run=run_constraint(LEARNED_RUNS),
    resources:
        mem_mb=job_resource("register", "mem_mb"),
        runtime=job_resource("register", "runtime"),
        gpu=job_resource("register", "gpu"),
        cpus_per_gpu=job_resource("register", "cpus_per_gpu"),
        gpu_model=job_resource("register", "gpu_model"),


rule audit_table:
    wildcard_constraints:
        dataset=DATASET_RE,
    input:
        data=f"{DATA}/{{dataset}}/dataset.json",
        runs=lambda w: run_list_path(w.dataset),
        audits=lambda w: [f"results/{w.dataset}/{r}/audit.csv" for r in audited_runs(w.dataset)],
    output:
        other=multiext(table_stem("audit", "{dataset}"), ".csv", ".md", ".tex"),
        html=report(table_stem("audit", "{dataset}") + ".html", caption="../report/audit.rst", category="{dataset}",
                  subcategory="5 Sanity audit"),
    params:
        data=lambda w: f"{DATA}/{w.dataset}",
        runs=lambda w: run_list_path(w.dataset),
        stem=lambda w: table_stem("audit", w.dataset),
        pairs=config["audit"]["pairs"],
        blank=config["audit"]["blank"],
        seed=config["seed"],
    log:
        "results/logs/audit_table/{dataset}.log",
    benchmark:
        "results/benchmarks/rules/audit_table/{dataset}.tsv"
    conda:
        "../../environment.yml"
    threads: THREADS["aggregate"]
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python -m pcreg audit-table --dataset {wildcards.dataset} --data {params.data} --runs {params.runs}"
        " --out-stem {params.stem} --pairs {params.pairs} --blank {params.blank} --seed {params.seed}"
        " {input.audits} > {log} 2>&1"
