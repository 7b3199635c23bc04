# Sanity audit: re-run each method with a blank and with another pair's moving image (pcreg/evaluation/audit.py),
# then tabulate every method's drops next to the fixed-copy oracle.


rule audit:
    wildcard_constraints:
        dataset=DATASET_RE,
        run=run_constraint(LEARNED_RUNS, exclude=True),
    input:
        register_inputs,
    output:
        f"{RES}/{{dataset}}/{{run}}/audit.csv",
    params:
        code=method_code("audit"),
        content=precomputed_content,
        data=lambda w: f"{DATA}/{w.dataset}",
        run=lambda w: run_spec_path(w.run),
        model=model_arg,
        pairs=config["audit"]["pairs"],
        blank=config["audit"]["blank"],
        seed=config["seed"],
        device=config["device"],
    log:
        f"{LOGS}/audit/{{dataset}}/{{run}}.log",
    benchmark:
        f"{BENCH}/audit/{{dataset}}/{{run}}.tsv"
    conda:
        "../../environment.yml"
    threads: THREADS["register"]
    resources:
        mem_mb=2000,
        runtime=30,
    shell:
        "python -m pcreg audit --data {params.data:q} --run {params.run:q} --out {output:q} --pairs {params.pairs:q}"
        " --blank {params.blank:q} --model={params.model:q} --seed {params.seed:q} --threads {threads}"
        " --device {params.device:q} > {log:q} 2>&1"


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
        audits=lambda w: [f"{result_dir(w.dataset, r)}/audit.csv" for r in audited_runs(w.dataset)],
    output:
        other=multiext(table_stem("audit", "{dataset}", TABLES), ".csv", ".md", ".tex"),
        html=report(table_stem("audit", "{dataset}", TABLES) + ".html", caption="../report/audit.rst", category="{dataset}",
                  subcategory="5 Sanity audit"),
    params:
        data=lambda w: f"{DATA}/{w.dataset}",
        runs=lambda w: run_list_path(w.dataset),
        code=_CODE["report"],
        stem=lambda w: table_stem("audit", w.dataset, TABLES),
        pairs=config["audit"]["pairs"],
        blank=config["audit"]["blank"],
        seed=config["seed"],
    log:
        f"{LOGS}/audit_table/{{dataset}}.log",
    benchmark:
        f"{BENCH}/audit_table/{{dataset}}.tsv"
    conda:
        "../../environment.yml"
    threads: THREADS["aggregate"]
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python -m pcreg audit-table --dataset {wildcards.dataset:q} --data {params.data:q} --runs {params.runs:q}"
        " --out-stem {params.stem:q} --pairs {params.pairs:q} --blank {params.blank:q} --seed {params.seed:q}"
        " {input.audits:q} > {log:q} 2>&1"
