#!/usr/bin/env python3
"""Driver of `make bench`: runs every row on libfanoise (build/bench/bench) and on two PyTorch
peers (bench/peer_torch.py: the usual autograd loop, and the same step written by hand without
autograd) at one and two threads, measures the GEMM-only time of each training step under every
OpenBLAS core type this CPU can run and the core's fused multiply-add peak
(build/bench/bench_kernels), prints the tables and writes the JSON (build/bench/results.json).

The row table below is the single source of truth: every side receives the same key=value
arguments. Standard library only, so it runs under any python3; the peers run under
--peer-python (Debian's /usr/bin/python3, which has python3-torch).

Threads, per side (the thread count t of a table):
- libfanoise: FAN_NET_THREADS = t (bench key threads=t), OPENBLAS_NUM_THREADS=1: the library's
  own kernels and pool run the step; OpenBLAS stays out of the way. Diagnostics (LAPACK) run
  with OPENBLAS_NUM_THREADS=t.
- PyTorch: torch.set_num_threads(t), OMP_NUM_THREADS=t, OMP_WAIT_POLICY=PASSIVE and
  OPENBLAS_NUM_THREADS=t: torch's OpenMP pool runs the elementwise work and OpenBLAS's the
  products, and neither spins while the other works (without PASSIVE, four spinning threads
  share two cores and the peer runs about 3x slower).
"""
import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time

FMNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
DATA_DIRS = ("data/fashion-mnist", "/usr/share/datasets/fashion-mnist")
# Fashion-MNIST: 60,000 training images, so 938 batches of 64 make one epoch of samples.
NOISE_STEPS = 938
WIDE_STEPS = 100
# A PyTorch side stops repeating a row after its budget once it has 3 repetitions, and earlier
# when slow repetitions would run past twice the budget (peer_torch.out_of_time).
ROW_BUDGET_S = 8.0
# Targets of issue 15.
TARGET_GEMM_BEST = 1.0       # FA b64 at least OpenBLAS's best GEMM-only rate (stretch 1.25)
TARGET_GEMM_STRETCH = 1.25
TARGET_SCALING = 1.8         # two threads over one
TARGET_DIAG = 1.0            # diagnostics at least PyTorch's speed
TARGET_NOISE_BASELINE = 1.5  # noise pretraining at least 1.5x the baseline build's rate
PAIRED_ROUNDS = 5            # rounds of the paired ratios (see paired_ratios)
NOISE_Z = 2.0

ARCH_784 = "784,100,10"
ARCH_WIDE = "784,1000,1000,10"
ARCH_WIDE3072 = "3072,1000,1000,10"
# OpenBLAS core types tried for the GEMM-only time; None leaves OPENBLAS_CORETYPE unset, which
# is what a user gets (OpenBLAS's own table of CPU models).
CORETYPES = (None, "Haswell", "Zen", "SkylakeX", "Cooperlake")
AVX512_CORETYPES = ("SkylakeX", "Cooperlake")

# id, label, kind, arguments (every side), whether the row has GEMM shapes, peers or not, and
# the targets it is held to.
ROWS = [
    dict(id="fa_b64", label="FA 784-100-10 b64, 1 epoch", kind="train",
         args=dict(sizes=ARCH_784, rule="fa", batch=64, reps=5), gemm=True, scaling=True,
         best=True),
    dict(id="bp_b64", label="BP 784-100-10 b64, 1 epoch", kind="train",
         args=dict(sizes=ARCH_784, rule="bp", batch=64, reps=5), gemm=True),
    dict(id="fa_b64_pregathered", label="FA b64, batches gathered beforehand", kind="train",
         args=dict(sizes=ARCH_784, rule="fa", batch=64, reps=5, eval=0, feed="pregathered"),
         gemm=True, peer=False),
    dict(id="noise_b64", label=f"Noise FA 784-100-10 b64, {NOISE_STEPS} steps, Adam",
         kind="noise", args=dict(sizes=ARCH_784, rule="fa", batch=64, reps=5,
                                 steps=NOISE_STEPS, opt="adam", lr=1e-4),
         gemm=True, scaling=True, baseline_target=True),
    dict(id="wide_b128", label=f"FA 784-1000-1000-10 b128, {WIDE_STEPS} steps", kind="train",
         args=dict(sizes=ARCH_WIDE, rule="fa", batch=128, reps=3, steps=WIDE_STEPS, eval=0),
         gemm=True, scaling=True),
    dict(id="wide3072_b128", label="Noise FA 3072-1000-1000-10 b128, 40 steps, SGD",
         kind="noise", args=dict(sizes=ARCH_WIDE3072, rule="fa", batch=128, reps=3, steps=40,
                                 warmup=5),
         gemm=True),
    dict(id="diag_784x100", label="Diagnostics, 100x784 layer", kind="diag",
         args=dict(sizes=ARCH_784, reps=5)),
    dict(id="diag_1000x1000", label="Diagnostics, 1000x1000 layer", kind="diag",
         args=dict(sizes="1000,1000,10", reps=3), diag_target=True),
]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run_json(cmd, env, what):
    """Runs cmd, returns its last stdout line parsed as JSON, or None (and says why)."""
    t0 = time.time()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        log(f"  {what} failed (exit {p.returncode}): {p.stderr.strip()[-600:]}")
        return None
    try:
        out = json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        log(f"  {what}: no JSON in output: {p.stdout[-300:]!r}")
        return None
    out["wall_s"] = round(time.time() - t0, 2)
    return out


def kv(args):
    return [f"{k}={v}" for k, v in args.items()]


def data_dir():
    for d in DATA_DIRS:
        if all(os.path.exists(os.path.join(d, f)) for f in FMNIST_FILES):
            return d
    return None


def machine_info():
    info = {"platform": platform.platform(), "cpus": os.cpu_count()}
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in lscpu.splitlines():
            k, _, v = line.partition(":")
            if k.strip() in ("Model name", "CPU family", "Model", "CPU(s)", "Thread(s) per core",
                             "CPU max MHz", "L1d cache", "L2 cache", "L3 cache"):
                info[k.strip()] = v.strip()
        flags = next((ln for ln in lscpu.splitlines() if ln.startswith("Flags")), "")
        info["avx512f"] = " avx512f" in flags
        info["avx2"] = " avx2" in flags
    except OSError:
        pass
    info["loadavg_start"] = os.getloadavg()
    info["OPENBLAS_CORETYPE"] = os.environ.get("OPENBLAS_CORETYPE")
    return info


def peer_status(python, env):
    p = subprocess.run([python, "-c", "import torch, numpy; print(torch.__version__)"],
                       env=env, capture_output=True, text=True)
    if p.returncode != 0:
        return False, (p.stderr.strip().splitlines() or ["unknown error"])[-1]
    return True, p.stdout.strip()


def lib_env(base, t, kind):
    env = dict(base)
    env["OPENBLAS_NUM_THREADS"] = str(t if kind == "diag" else 1)
    return env


def peer_env(base, t):
    env = dict(base)
    env.update(OPENBLAS_NUM_THREADS=str(t), OMP_NUM_THREADS=str(t), OMP_WAIT_POLICY="PASSIVE")
    return env


def gemm_env(base, t, coretype):
    env = dict(base)
    env["OPENBLAS_NUM_THREADS"] = str(t)
    env.pop("OPENBLAS_CORETYPE", None)
    if coretype:
        env["OPENBLAS_CORETYPE"] = coretype
    return env


def mean_sd(v):
    v = [x for x in v if x is not None and not math.isnan(x)]
    if not v:
        return None, None, 0
    return statistics.fmean(v), (statistics.stdev(v) if len(v) > 1 else 0.0), len(v)


def accuracy_equal(lib, peer):
    """|mean_lib - mean_torch| <= NOISE_Z * SE of the difference."""
    ml, sl, nl = mean_sd(lib.get("accuracy", []))
    mp, sp, np_ = mean_sd(peer.get("accuracy", []))
    if ml is None or mp is None:
        return None
    se = math.sqrt(sl * sl / nl + sp * sp / np_)
    return {"lib_mean": ml, "torch_mean": mp, "diff": ml - mp, "se": se,
            "equal": abs(ml - mp) <= NOISE_Z * max(se, 1e-4)}


def fmt_rate(v):
    return "-" if v is None else f"{v:,.0f}/s"


def fmt_time(v):
    return "-" if v is None else (f"{v * 1e3:.1f} ms" if v < 1 else f"{v:.2f} s")


def fmt_pct(v):
    return "-" if v is None else f"{100 * v:.0f}%"


def fmt_x(v):
    return "-" if v is None else f"{v:.2f}x"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default="build/bench/bench")
    ap.add_argument("--kernels-bin", default="build/bench/bench_kernels")
    ap.add_argument("--peer-python", default="/usr/bin/python3")
    ap.add_argument("--threads", default="1,2", help="thread counts, comma-separated")
    ap.add_argument("--out", default="build/bench/results.json")
    ap.add_argument("--quick", action="store_true", help="2 repetitions per row (smoke run)")
    ap.add_argument("--rows", default="", help="comma-separated row ids (default: all)")
    ap.add_argument("--no-peer", action="store_true", help="skip PyTorch")
    ap.add_argument("--baseline-bin", default="",
                    help="a `bench` built from another revision: its one-thread rate per row "
                         "is reported next to this one's")
    ap.add_argument("--paired", type=int, default=PAIRED_ROUNDS, metavar="N",
                    help="rounds of the paired ratio measurement of the rows held to a ratio "
                         f"target (default {PAIRED_ROUNDS}, 0 skips it; --quick: 1)")
    ap.add_argument("--from-json", metavar="FILE",
                    help="print the tables of a saved results file again (nothing is run)")
    a = ap.parse_args()
    if a.from_json:
        with open(a.from_json) as f:
            res = json.load(f)
        finish(res)
        print_tables(res)
        return
    t_start = time.time()
    threads = [int(t) for t in a.threads.split(",") if t]
    base = dict(os.environ)
    here = os.path.dirname(os.path.abspath(__file__))
    peer_script = os.path.join(here, "peer_torch.py")

    info = machine_info()
    lib_info = run_json([a.bin, "info"], lib_env(base, 1, "info"), "libfanoise info") or {}
    fma = run_json([a.kernels_bin, "fma"], base, "FMA peak") or {}
    have_peer, peer_msg = (False, "skipped (--no-peer)") if a.no_peer else \
        peer_status(a.peer_python, base)
    if not have_peer:
        log(f"PyTorch peer not available ({a.peer_python}: {peer_msg}); "
            "printing the libfanoise side only")
    peer_info = run_json([a.peer_python, peer_script, "info"], peer_env(base, 1), "peer info") \
        if have_peer else None
    ddir = data_dir()
    if ddir is None:
        log("Fashion-MNIST not found in " + " or ".join(DATA_DIRS) + ": training rows skipped")
    coretypes = [c for c in CORETYPES if c not in AVX512_CORETYPES or info.get("avx512f")]

    results = {"machine": info, "threads": threads, "libfanoise": lib_info, "fma": fma,
               "pytorch": peer_info if have_peer else {"missing": peer_msg},
               "data": ddir, "rows": [], "command": " ".join(sys.argv),
               "coretypes": [c or "default" for c in coretypes]}
    wanted = set(filter(None, a.rows.split(",")))
    rows = [r for r in ROWS if (not wanted or r["id"] in wanted)
            and not (r["kind"] == "train" and ddir is None)]
    for row in rows:
        args = dict(row["args"])
        if a.quick:
            args["reps"] = 2
        if ddir is not None and row["kind"] == "train":
            args["data"] = ddir
        log(f"[{row['id']}] {row['label']}")
        rec = {"id": row["id"], "label": row["label"], "kind": row["kind"], "args": args,
               "runs": {}}
        if a.baseline_bin:
            rec["baseline"] = run_json([a.baseline_bin, row["kind"]] + kv(args),
                                       lib_env(base, 1, row["kind"]), "baseline")
        if row.get("gemm"):
            rec["kernels"] = run_json([a.kernels_bin, "step", f"sizes={args['sizes']}",
                                       f"batch={args['batch']}"], lib_env(base, 1, "train"),
                                      "kernels GEMM-only")
        for t in threads:
            run = {}
            run["lib"] = run_json([a.bin, row["kind"]] + kv(dict(args, threads=t)),
                                  lib_env(base, t, row["kind"]), f"libfanoise t={t}")
            if have_peer and row.get("peer", True):
                for style in ("autograd", "hand") if row["kind"] != "diag" else ("autograd",):
                    pargs = dict(args, threads=t, style=style, budget=ROW_BUDGET_S)
                    run[style] = run_json([a.peer_python, peer_script, row["kind"]] + kv(pargs),
                                          peer_env(base, t), f"pytorch {style} t={t}")
            if row.get("gemm"):
                run["gemm"] = {}
                for c in coretypes:
                    g = run_json([a.bin, "gemm", f"sizes={args['sizes']}",
                                  f"batch={args['batch']}"], gemm_env(base, t, c),
                                 f"OpenBLAS {c or 'default'} GEMM-only t={t}")
                    if g:
                        run["gemm"][c or "default"] = {"step_us": g["gemm_step_us"],
                                                       "core": g.get("openblas_core"),
                                                       "flops_per_sample": g["flops_per_sample"]}
            rec["runs"][str(t)] = run
        results["rows"].append(rec)
        finish_row(results, ROW_SPEC.get(rec["id"], {}), rec)
        log("  " + summary_line(rec))

    if ddir is not None:
        log("[rss] full Fashion-MNIST job: load, FA b64 epoch, evaluate")
        rss = {"lib": run_json([a.bin, "rss", f"data={ddir}"], lib_env(base, 1, "rss"),
                               "libfanoise rss")}
        if have_peer:
            rss["torch"] = run_json([a.peer_python, peer_script, "rss", f"data={ddir}"],
                                    peer_env(base, 1), "pytorch rss")
        results["rss"] = rss

    rounds = 1 if a.quick and a.paired == PAIRED_ROUNDS else a.paired
    if rounds > 0:
        for rec in results["rows"]:
            if ROW_SPEC[rec["id"]].get("scaling"):
                log(f"[{rec['id']}] paired ratios, {rounds} rounds")
                rec["paired"] = paired_ratios(a, base, rec, threads, rounds)

    results["machine"]["loadavg_end"] = os.getloadavg()
    results["elapsed_s"] = round(time.time() - t_start, 1)
    finish(results)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(results, f, indent=1)
    print_tables(results)
    print(f"\nwritten {a.out}; elapsed {results['elapsed_s']} s")


ROW_SPEC = {r["id"]: r for r in ROWS}


def paired_ratios(a, base, rec, threads, rounds):
    """The target ratios of a row measured side by side. This machine's speed drifts by tens of
    percent over minutes (other guests on the host), and the main tables time one thread, two
    threads, the GEMM-only time and the baseline build up to a minute apart. Here each round runs
    them back to back (two repetitions each, the order reversed every other round, so a drift
    within a round favours neither side) and each ratio is taken within its round; the median
    over rounds is what the targets use, the spread is printed with it."""
    args = dict(rec["args"], reps=2)
    d1 = rec["derived"].get("1", {})
    best = d1.get("gemm_best_core")
    jobs = [("t1", [a.bin, rec["kind"]] + kv(dict(args, threads=1)), lib_env(base, 1, rec["kind"]))]
    if 2 in threads:
        jobs.append(("t2", [a.bin, rec["kind"]] + kv(dict(args, threads=2)),
                     lib_env(base, 2, rec["kind"])))
    if a.baseline_bin:
        jobs.append(("baseline", [a.baseline_bin, rec["kind"]] + kv(args),
                     lib_env(base, 1, rec["kind"])))
    if best is not None and ROW_SPEC[rec["id"]].get("best"):
        jobs.append(("gemm", [a.bin, "gemm", f"sizes={args['sizes']}", f"batch={args['batch']}"],
                     gemm_env(base, 1, None if best == "default" else best)))
    ratios = {"two_over_one": [], "over_baseline": [], "of_gemm_best": []}
    for i in range(rounds):
        got = {}
        for name, cmd, env in (jobs if i % 2 == 0 else jobs[::-1]):
            r = run_json(cmd, env, f"paired {name}")
            if r is None:
                continue
            got[name] = (args["batch"] / (r["gemm_step_us"] * 1e-6) if name == "gemm"
                         else r["median_samples_per_s"])
        if "t1" not in got:
            continue
        if "t2" in got:
            ratios["two_over_one"].append(got["t2"] / got["t1"])
        if "baseline" in got:
            ratios["over_baseline"].append(got["t1"] / got["baseline"])
        if "gemm" in got:
            ratios["of_gemm_best"].append(got["t1"] / got["gemm"])
    return {k: {"ratios": v, "median": statistics.median(v), "min": min(v), "max": max(v)}
            for k, v in ratios.items() if v}


def fma_peak(res):
    f = res.get("fma") or {}
    return f.get("fma512_gflops") or f.get("fma256_gflops")


def finish_row(res, spec, rec):
    """Derived figures per thread count: rates, ratios, fractions."""
    rec["derived"] = {}
    peak = fma_peak(res)
    for t, run in rec["runs"].items():
        lib, d = run.get("lib"), {}
        if rec["kind"] in ("train", "noise"):
            d["lib_rate"] = lib and lib["median_samples_per_s"]
            for style in ("autograd", "hand"):
                p = run.get(style)
                d[f"{style}_rate"] = p and p["median_samples_per_s"]
                if d["lib_rate"] and d[f"{style}_rate"]:
                    d[f"ratio_{style}"] = d["lib_rate"] / d[f"{style}_rate"]
            g = run.get("gemm") or {}
            if g:
                best = min(g, key=lambda c: g[c]["step_us"])
                d["gemm_best_core"] = best
                d["gemm_best_rate"] = rec["args"]["batch"] / (g[best]["step_us"] * 1e-6)
                if "default" in g:
                    d["gemm_default_rate"] = rec["args"]["batch"] / (g["default"]["step_us"] * 1e-6)
                if d["lib_rate"]:
                    d["of_gemm_best"] = d["lib_rate"] / d["gemm_best_rate"]
                    flops = g[best]["flops_per_sample"]
                    d["gflops"] = d["lib_rate"] * flops * 1e-9
                    if peak:
                        d["of_fma_peak"] = d["gflops"] / (peak * int(t))
            if lib and run.get("autograd") and "accuracy" in lib:
                d["accuracy"] = accuracy_equal(lib, run["autograd"])
        else:
            d["lib_s"] = lib and lib["median_seconds"]
            d["lib_two_svds_s"] = lib and lib.get("median_seconds_two_svds")
            p = run.get("autograd")
            d["autograd_s"] = p and p["median_seconds"]
            if d["lib_s"] and d["autograd_s"]:
                d["ratio_autograd"] = d["autograd_s"] / d["lib_s"]
        rec["derived"][t] = d
    base = rec.get("baseline")
    if base and "1" in rec["derived"]:
        d1 = rec["derived"]["1"]
        if rec["kind"] in ("train", "noise") and d1.get("lib_rate"):
            d1["baseline_rate"] = base["median_samples_per_s"]
            d1["over_baseline"] = d1["lib_rate"] / base["median_samples_per_s"]
        elif rec["kind"] == "diag" and d1.get("lib_s"):
            d1["baseline_s"] = base["median_seconds"]
            d1["over_baseline"] = base["median_seconds"] / d1["lib_s"]
    if "1" in rec["derived"] and "2" in rec["derived"]:
        r1, r2 = rec["derived"]["1"].get("lib_rate"), rec["derived"]["2"].get("lib_rate")
        if r1 and r2:
            rec["derived"]["scaling"] = r2 / r1


def finish(res):
    for rec in res["rows"]:
        finish_row(res, ROW_SPEC.get(rec["id"], {}), rec)
    res["targets"] = targets(res)


def summary_line(rec):
    parts = []
    for t, d in rec["derived"].items():
        if not isinstance(d, dict):
            continue
        if "lib_rate" in d:
            parts.append(f"t={t}: lib {fmt_rate(d['lib_rate'])} autograd "
                         f"{fmt_rate(d.get('autograd_rate'))} hand {fmt_rate(d.get('hand_rate'))}"
                         f" {fmt_pct(d.get('of_gemm_best'))} of best GEMM-only")
        else:
            parts.append(f"t={t}: lib {fmt_time(d.get('lib_s'))} torch "
                         f"{fmt_time(d.get('autograd_s'))}")
    if "scaling" in rec["derived"]:
        parts.append(f"2T/1T {rec['derived']['scaling']:.2f}x")
    return "; ".join(parts)


def targets(res):
    out = []
    for rec in res["rows"]:
        spec, der = ROW_SPEC.get(rec["id"], {}), rec["derived"]
        d1 = der.get("1", {})
        pr = rec.get("paired") or {}

        def figure(key, unpaired):
            if key in pr:
                n = len(pr[key]["ratios"])
                return pr[key]["median"], f" (paired, median of {n} round{'s' if n > 1 else ''})"
            return unpaired, ""
        v, how = figure("of_gemm_best", d1.get("of_gemm_best"))
        if spec.get("best") and v is not None:
            out.append({"target": f"{rec['id']}, 1 thread: >= OpenBLAS's best GEMM-only rate{how}",
                        "value": v, "met": v >= TARGET_GEMM_BEST})
            out.append({"target": f"{rec['id']}, 1 thread: stretch, >= {TARGET_GEMM_STRETCH}x it"
                                  f"{how}", "value": v, "met": v >= TARGET_GEMM_STRETCH})
        v, how = figure("two_over_one", der.get("scaling"))
        if spec.get("scaling") and v is not None:
            out.append({"target": f"{rec['id']}: 2 threads >= {TARGET_SCALING}x 1 thread{how}",
                        "value": v, "met": v >= TARGET_SCALING})
        v, how = figure("over_baseline", d1.get("over_baseline"))
        if spec.get("baseline_target") and v is not None:
            out.append({"target": f"{rec['id']}: >= {TARGET_NOISE_BASELINE}x the baseline build"
                                  f"{how}", "value": v, "met": v >= TARGET_NOISE_BASELINE})
        if spec.get("diag_target"):
            for t, d in der.items():
                if isinstance(d, dict) and d.get("ratio_autograd") is not None:
                    v = d["ratio_autograd"]
                    out.append({"target": f"{rec['id']}, {t} thread(s): >= PyTorch's speed",
                                "value": v, "met": v >= TARGET_DIAG})
        for t, d in der.items():
            if isinstance(d, dict) and d.get("accuracy"):
                acc = d["accuracy"]
                out.append({"target": f"{rec['id']}, {t} thread(s): accuracy equal within noise",
                            "value": acc["diff"], "met": acc["equal"]})
    return out


def print_tables(res):
    m, li, fma = res["machine"], res.get("libfanoise", {}), res.get("fma", {})
    have_peer = "missing" not in res.get("pytorch", {})
    print(f"\nlibfanoise {li.get('version', '?')} vs "
          + (f"PyTorch {res['pytorch'].get('torch', '?')}" if have_peer
             else f"PyTorch: not available ({res['pytorch'].get('missing')})"))
    print(f"{m.get('Model name', '?')} (family {m.get('CPU family', '?')}, model "
          f"{m.get('Model', '?')}), {m.get('cpus')} CPUs; libfanoise kernels: "
          f"{fma.get('supported', '?')}; OpenBLAS: {li.get('openblas_config', '')}")
    print(f"FMA peak of one core: {fma.get('fma512_gflops', '-')} GFLOP/s at 512 bits, "
          f"{fma.get('fma256_gflops', '-')} at 256 bits")
    la, lb = m["loadavg_start"], m.get("loadavg_end", ("?",) * 3)
    print(f"load average at start {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}, at end "
          f"{lb[0]:.2f} {lb[1]:.2f} {lb[2]:.2f}")
    for t in [str(t) for t in res["threads"]]:
        print(f"\n### {t} thread{'s' if t != '1' else ''}\n")
        head = (f"| {'row':<46} | {'libfanoise':>12} | {'% best GEMM':>11} | {'% FMA':>5} "
                f"| {'PyTorch':>11} | {'lib/torch':>9} | {'torch hand':>11} | {'lib/hand':>8} "
                f"| {'accuracy lib / torch':<20} |")
        print(head)
        print("|" + "|".join("-" * len(c) for c in head.strip().split("|")[1:-1]) + "|")
        for rec in res["rows"]:
            d = rec["derived"].get(t)
            if d is None:
                continue
            run = rec["runs"][t]
            if "lib_rate" in d:
                a_, p_, h_ = fmt_rate(d["lib_rate"]), fmt_rate(d.get("autograd_rate")), \
                    fmt_rate(d.get("hand_rate"))
            else:
                a_, p_, h_ = fmt_time(d.get("lib_s")), fmt_time(d.get("autograd_s")), "-"
            lib = run.get("lib") or {}
            acc = "-"
            if "median_accuracy" in lib:
                acc = f"{lib['median_accuracy']:.4f}"
                if "median_accuracy" in (run.get("autograd") or {}):
                    acc += f" / {run['autograd']['median_accuracy']:.4f}"
            elif "median_tail_loss" in lib:
                acc = f"loss {lib['median_tail_loss']:.3f}"
                if "median_tail_loss" in (run.get("autograd") or {}):
                    acc += f" / {run['autograd']['median_tail_loss']:.3f}"
            print(f"| {rec['label']:<46} | {a_:>12} | {fmt_pct(d.get('of_gemm_best')):>11} "
                  f"| {fmt_pct(d.get('of_fma_peak')):>5} | {p_:>11} "
                  f"| {fmt_x(d.get('ratio_autograd')):>9} | {h_:>11} "
                  f"| {fmt_x(d.get('ratio_hand')):>8} | {acc:<20} |")
    rss = res.get("rss") or {}
    if rss.get("lib"):
        lk = rss["lib"]["peak_rss_kb"]
        tk = rss["torch"]["peak_rss_kb"] if rss.get("torch") else None
        print(f"\npeak RSS of a full Fashion-MNIST FA b64 job (one thread): libfanoise "
              f"{lk / 1024:.1f} MB" + (f", PyTorch {tk / 1024:.1f} MB" if tk else ""))
    print("\n### Two threads over one (libfanoise)\n")
    print(f"| {'row':<46} | {'1 thread':>12} | {'2 threads':>12} | {'speed-up':>8} "
          f"| {'cores busy, 1T / 2T':>19} |")
    print(f"|{'-' * 48}|{'-' * 14}|{'-' * 14}|{'-' * 10}|{'-' * 21}|")
    for rec in res["rows"]:
        der = rec["derived"]
        if "scaling" not in der:
            continue
        cpu = []
        for t in ("1", "2"):
            lib = rec["runs"][t].get("lib") or {}
            c, s = lib.get("cpu_seconds"), lib.get("seconds")
            cpu.append(statistics.median(c) / statistics.median(s) if c and s else None)
        cs = f"{cpu[0]:.2f} / {cpu[1]:.2f}" if None not in cpu else "-"
        print(f"| {rec['label']:<46} | {fmt_rate(der['1']['lib_rate']):>12} "
              f"| {fmt_rate(der['2']['lib_rate']):>12} | {der['scaling']:>7.2f}x | {cs:>19} |")
    print("\n### GEMM-only time of one step (microseconds), one thread\n")
    cores = res.get("coretypes", [])
    head = f"| {'row':<22} | " + " | ".join(f"{'OpenBLAS ' + c:>19}" for c in cores) + \
        f" | {'libfanoise kernels':>18} |"
    print(head)
    print("|" + "|".join("-" * len(c) for c in head.strip().split("|")[1:-1]) + "|")
    for rec in res["rows"]:
        g = (rec["runs"].get("1") or {}).get("gemm")
        if not g:
            continue
        k = rec.get("kernels") or {}
        own = k.get(f"{k.get('supported')}_step_us")
        cells = [f"{g[c]['step_us']:>19.1f}" if c in g else f"{'-':>19}" for c in cores]
        print(f"| {rec['id']:<22} | " + " | ".join(cells)
              + f" | {own if own is None else round(own, 1):>18} |")
    if any("baseline" in rec for rec in res["rows"]):
        print("\n### Against the baseline build, one thread\n")
        for rec in res["rows"]:
            d1 = rec["derived"].get("1", {})
            if "over_baseline" in d1:
                print(f"  {rec['id']:<22} {d1['over_baseline']:.2f}x the baseline")
    if any(rec.get("paired") for rec in res["rows"]):
        print("\n### Ratios measured side by side (median of the rounds, min-max)\n")
        names = (("two_over_one", "2 threads / 1"), ("of_gemm_best", "1 thread / best GEMM-only"),
                 ("over_baseline", "1 thread / baseline"))
        for rec in res["rows"]:
            pr = rec.get("paired") or {}
            cells = [f"{label} {pr[k]['median']:.2f}x ({pr[k]['min']:.2f}-{pr[k]['max']:.2f})"
                     for k, label in names if k in pr]
            if cells:
                print(f"  {rec['id']:<12} " + "; ".join(cells))
    print("\n% best GEMM: samples/s over the rate a step would reach if it cost only its GEMMs,"
          " timed at the step's\nshapes with the fastest OpenBLAS core type for this CPU at the"
          " same thread count. % FMA: the step's GEMM\nFLOPs per second over the FMA peak of the"
          " cores used. Ratios: libfanoise's samples/s over the peer's. Cores busy:\nCPU seconds"
          " over wall seconds of the timed part (waiting threads spin, so they count).")
    print("\nTargets:")
    for t in res["targets"]:
        v = t["value"]
        vs = "-" if v is None else (f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}")
        verdict = "n/a" if t["met"] is None else ("met" if t["met"] else "NOT met")
        print(f"  {verdict:<8} {t['target']} (measured {vs})")


if __name__ == "__main__":
    main()
