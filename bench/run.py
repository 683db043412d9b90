#!/usr/bin/env python3
"""Driver of `make bench`: runs every row on libfanoise (build/bench/bench) and on PyTorch
(bench/peer_torch.py) one after the other, computes medians, ratios and the fraction of the
GEMM-bound limit, prints the table and writes the JSON results (build/bench/results.json).

The row table below is the single source of truth: both sides receive the same key=value
arguments. Standard library only, so it runs under any python3; the peer runs under
--peer-python (Debian's /usr/bin/python3, which has python3-torch).
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
DEEP_STEPS = 150
# The PyTorch side stops repeating a row after its budget once it has 3 repetitions, and
# earlier when slow repetitions would run past twice the budget (peer_torch.out_of_time). The
# budget is ROW_BUDGET_S, shrunk when the run as a whole
# nears DEADLINE_S, so that `make bench` stays inside five minutes even when other jobs slow the
# machine down (PyTorch's OpenMP threads suffer most from sharing cores). libfanoise's rows take
# a few seconds each and always run in full.
ROW_BUDGET_S = 15.0
MIN_ROW_BUDGET_S = 2.0
DEADLINE_S = 240.0
# Targets of issue 6.
TARGET_SPEEDUP = 5.0
TARGET_GEMM_FRACTION = 0.60
TARGET_RSS_FRACTION = 0.25
# Two means are "equal within noise" when they differ by at most this many standard errors of
# their difference (about a 95% two-sided criterion).
NOISE_Z = 2.0

ARCH_784 = "784,100,10"
ARCH_DEEP = "784,512,512,512,10"

# id, label, kind, arguments (both sides), GEMM shape (sizes, batch) or None, peer or not,
# and the targets the row is held to.
ROWS = [
    dict(id="fa_b64", label="FA 784-100-10 b64, 1 epoch", kind="train",
         args=dict(sizes=ARCH_784, rule="fa", batch=64, reps=5), gemm=True, speedup=True),
    dict(id="bp_b64", label="BP 784-100-10 b64, 1 epoch", kind="train",
         args=dict(sizes=ARCH_784, rule="bp", batch=64, reps=5), gemm=True, speedup=True),
    dict(id="fa_b256", label="FA 784-100-10 b256, 1 epoch", kind="train",
         args=dict(sizes=ARCH_784, rule="fa", batch=256, reps=5), gemm=True),
    dict(id="bp_b256", label="BP 784-100-10 b256, 1 epoch", kind="train",
         args=dict(sizes=ARCH_784, rule="bp", batch=256, reps=5), gemm=True),
    dict(id="fa_b64_pregathered", label="FA b64, pre-gathered batches (lib only)",
         kind="train", args=dict(sizes=ARCH_784, rule="fa", batch=64, reps=5, eval=0,
                                 feed="pregathered"),
         gemm=True, peer=False, fraction_target=False),
    dict(id="noise_b64", label=f"Noise FA 784-100-10 b64, {NOISE_STEPS} steps, Adam",
         kind="noise", args=dict(sizes=ARCH_784, rule="fa", batch=64, reps=5,
                                 steps=NOISE_STEPS, opt="adam", lr=1e-4),
         gemm=True, speedup=True),
    dict(id="deep_fa_b128", label=f"FA 784-512x3-10 b128, {DEEP_STEPS} steps", kind="train",
         args=dict(sizes=ARCH_DEEP, rule="fa", batch=128, reps=3, steps=DEEP_STEPS, eval=0),
         gemm=True),
    dict(id="diag_784x100", label="Diagnostics, 100x784 layer", kind="diag",
         args=dict(sizes=ARCH_784, reps=5), gemm=False),
    dict(id="diag_1000x1000", label="Diagnostics, 1000x1000 layer", kind="diag",
         args=dict(sizes="1000,1000,10", reps=3), gemm=False),
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
            if k.strip() in ("Model name", "CPU(s)", "Thread(s) per core", "Core(s) per socket",
                             "CPU max MHz", "L1d cache", "L2 cache", "L3 cache"):
                info[k.strip()] = v.strip()
        flags = next((ln for ln in lscpu.splitlines() if ln.startswith("Flags")), "")
        info["avx512f"] = " avx512f" in flags
        info["avx2"] = " avx2" in flags
    except OSError:
        pass
    info["loadavg_start"] = os.getloadavg()
    return info


def peer_status(python, env):
    p = subprocess.run([python, "-c", "import torch, numpy; print(torch.__version__)"],
                       env=env, capture_output=True, text=True)
    if p.returncode != 0:
        return False, (p.stderr.strip().splitlines() or ["unknown error"])[-1]
    return True, p.stdout.strip()


def mean_sd(v):
    v = [x for x in v if x is not None and not math.isnan(x)]
    if not v:
        return None, None, 0
    return statistics.fmean(v), (statistics.stdev(v) if len(v) > 1 else 0.0), len(v)


def accuracy_equal(lib, peer):
    """Means and the verdict of |mean_lib - mean_torch| <= NOISE_Z * SE of the difference."""
    ml, sl, nl = mean_sd(lib.get("accuracy", []))
    mp, sp, np_ = mean_sd(peer.get("accuracy", []))
    if ml is None or mp is None:
        return None
    se = math.sqrt(sl * sl / nl + sp * sp / np_)
    return {"lib_mean": ml, "lib_sd": sl, "torch_mean": mp, "torch_sd": sp,
            "diff": ml - mp, "se": se, "equal": abs(ml - mp) <= NOISE_Z * max(se, 1e-4)}


def fmt_rate(v):
    return "-" if v is None else f"{v:,.0f}/s"


def fmt_time(v):
    return "-" if v is None else (f"{v * 1e3:.1f} ms" if v < 1 else f"{v:.2f} s")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default="build/bench/bench")
    ap.add_argument("--peer-python", default="/usr/bin/python3")
    ap.add_argument("--threads", type=int,
                    default=int(os.environ.get("OPENBLAS_NUM_THREADS", "2") or 2))
    ap.add_argument("--out", default="build/bench/results.json")
    ap.add_argument("--quick", action="store_true", help="2 repetitions per row (smoke run)")
    ap.add_argument("--rows", default="", help="comma-separated row ids (default: all)")
    ap.add_argument("--no-peer", action="store_true", help="skip PyTorch")
    ap.add_argument("--from-json", metavar="FILE",
                    help="print the table of a saved results file again (nothing is run)")
    a = ap.parse_args()
    if a.from_json:
        reprint(a.from_json)
        return
    t_start = time.time()

    env = dict(os.environ)
    env["OPENBLAS_NUM_THREADS"] = str(a.threads)
    env["OMP_NUM_THREADS"] = str(a.threads)
    here = os.path.dirname(os.path.abspath(__file__))
    peer_script = os.path.join(here, "peer_torch.py")

    info = machine_info()
    lib_info = run_json([a.bin, "info"], env, "libfanoise info") or {}
    have_peer, peer_msg = (False, "skipped (--no-peer)") if a.no_peer else \
        peer_status(a.peer_python, env)
    if not have_peer:
        log(f"PyTorch peer not available ({a.peer_python}: {peer_msg}); "
            "printing the libfanoise side only")
    peer_info = run_json([a.peer_python, peer_script, "info"], env, "peer info") \
        if have_peer else None
    ddir = data_dir()
    if ddir is None:
        log("Fashion-MNIST not found in " + " or ".join(DATA_DIRS) + ": training rows skipped")

    results = {"machine": info, "threads": a.threads, "libfanoise": lib_info,
               "pytorch": peer_info if have_peer else {"missing": peer_msg},
               "data": ddir, "rows": [], "command": " ".join(sys.argv)}
    peak = run_json([a.bin, "peak", "dim=1024"], env, "sgemm peak")
    results["sgemm_peak"] = peak

    wanted = set(filter(None, a.rows.split(",")))
    rows = [r for r in ROWS if (not wanted or r["id"] in wanted)
            and not (r["kind"] == "train" and ddir is None)]
    for i, row in enumerate(rows):
        args = dict(row["args"])
        if a.quick:
            args["reps"] = 2
        if ddir is not None:
            args["data"] = ddir
        log(f"[{row['id']}] {row['label']}")
        rec = {"id": row["id"], "label": row["label"], "kind": row["kind"], "args": args}
        rec["lib"] = run_json([a.bin, row["kind"]] + kv(args), env, "libfanoise")
        if have_peer and row.get("peer", True):
            # Peer rows left, this one included, plus one share for the RSS job.
            left = sum(1 for r in rows[i:] if r.get("peer", True)) + 1
            share = (DEADLINE_S - (time.time() - t_start)) / (2 * left)
            pargs = dict(args, budget=round(max(MIN_ROW_BUDGET_S, min(ROW_BUDGET_S, share)), 1))
            rec["torch"] = run_json([a.peer_python, peer_script, row["kind"]] + kv(pargs), env,
                                    "pytorch")
        if row.get("gemm"):
            g = run_json([a.bin, "gemm", f"sizes={args['sizes']}", f"batch={args['batch']}"],
                         env, "gemm ceiling")
            rec["gemm"] = g
        derive(row, rec)
        results["rows"].append(rec)
        log("  " + summary_line(rec))

    log("[rss] full Fashion-MNIST job: load, FA b64 epoch, evaluate")
    if ddir is not None:
        rss = {"lib": run_json([a.bin, "rss", f"data={ddir}"], env, "libfanoise rss")}
        if have_peer:
            rss["torch"] = run_json([a.peer_python, peer_script, "rss", f"data={ddir}"], env,
                                    "pytorch rss")
        results["rss"] = rss

    results["machine"]["loadavg_end"] = os.getloadavg()
    results["targets"] = targets(results, have_peer)
    results["elapsed_s"] = round(time.time() - t_start, 1)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(results, f, indent=1)
    print_table(results, have_peer, peer_msg)
    print(f"\nwritten {a.out}; elapsed {results['elapsed_s']} s")


def reprint(path):
    """Recomputes the derived figures and targets of a saved run and prints its table."""
    with open(path) as f:
        res = json.load(f)
    specs = {r["id"]: r for r in ROWS}
    for rec in res["rows"]:
        derive(specs.get(rec["id"], {"kind": rec["kind"]}), rec)
    have_peer = "missing" not in res.get("pytorch", {})
    res["targets"] = targets(res, have_peer)
    print_table(res, have_peer, res.get("pytorch", {}).get("missing", ""))


def derive(row, rec):
    lib, peer, g = rec.get("lib"), rec.get("torch"), rec.get("gemm")
    d = {}
    if row["kind"] in ("train", "noise"):
        d["lib_rate"] = lib and lib["median_samples_per_s"]
        d["torch_rate"] = peer and peer["median_samples_per_s"]
        if d["lib_rate"] and d["torch_rate"]:
            d["ratio"] = d["lib_rate"] / d["torch_rate"]
        # The limit that counts is the one libfanoise measured right after each of its
        # repetitions (same machine load); the separate `gemm` run only details the shapes.
        if lib and "median_limit_samples_per_s" in lib:
            d["limit"] = lib["median_limit_samples_per_s"]
            d["lib_fraction"] = lib["median_gemm_fraction"]
            if d["torch_rate"]:
                d["torch_fraction"] = d["torch_rate"] / d["limit"]
        if lib and peer and "accuracy" in lib and "accuracy" in peer:
            d["accuracy"] = accuracy_equal(lib, peer)
    elif row["kind"] == "diag":
        d["lib_s"] = lib and lib["median_seconds"]
        d["torch_s"] = peer and peer["median_seconds"]
        if d["lib_s"] and d["torch_s"]:
            # Faster is better: the ratio is stated as speed, like the training rows.
            d["ratio"] = d["torch_s"] / d["lib_s"]
    d["speedup_target"] = bool(row.get("speedup"))
    d["fraction_target"] = row["kind"] in ("train", "noise") and row.get("fraction_target", True)
    rec["derived"] = d


def summary_line(rec):
    d = rec["derived"]
    if "lib_rate" in d:
        s = f"lib {fmt_rate(d['lib_rate'])}  torch {fmt_rate(d.get('torch_rate'))}"
    else:
        s = f"lib {fmt_time(d.get('lib_s'))}  torch {fmt_time(d.get('torch_s'))}"
    if "ratio" in d:
        s += f"  ratio {d['ratio']:.2f}x"
    if "lib_fraction" in d:
        s += f"  {100 * d['lib_fraction']:.0f}% of GEMM limit"
    return s


def targets(res, have_peer):
    out = []
    for rec in res["rows"]:
        d = rec["derived"]
        if d.get("speedup_target"):
            r = d.get("ratio")
            out.append({"target": f"{rec['id']}: >= {TARGET_SPEEDUP:g}x PyTorch samples/s",
                        "value": r, "met": None if r is None else r >= TARGET_SPEEDUP})
        if d.get("fraction_target"):
            f = d.get("lib_fraction")
            out.append({"target": f"{rec['id']}: >= {TARGET_GEMM_FRACTION:.0%} of GEMM limit",
                        "value": f, "met": None if f is None else f >= TARGET_GEMM_FRACTION})
        if d.get("accuracy"):
            acc = d["accuracy"]
            out.append({"target": f"{rec['id']}: accuracy equal within noise",
                        "value": acc["diff"], "met": acc["equal"]})
    rss = res.get("rss") or {}
    if rss.get("lib") and rss.get("torch"):
        frac = rss["lib"]["peak_rss_kb"] / rss["torch"]["peak_rss_kb"]
        out.append({"target": f"peak RSS <= {TARGET_RSS_FRACTION:g} of PyTorch's",
                    "value": frac, "met": frac <= TARGET_RSS_FRACTION})
    return out


def print_table(res, have_peer, peer_msg):
    m = res["machine"]
    li = res.get("libfanoise", {})
    print(f"\nlibfanoise {li.get('version', '?')} vs "
          + (f"PyTorch {res['pytorch'].get('torch', '?')}" if have_peer
             else f"PyTorch: not available ({peer_msg})"))
    print(f"{m.get('Model name', '?')}, {m.get('cpus')} CPUs; threads {res['threads']} "
          f"(OPENBLAS_NUM_THREADS and torch.set_num_threads); {li.get('openblas_config', '')}, "
          f"core {li.get('openblas_core', '?')}")
    la, lb = m["loadavg_start"], m.get("loadavg_end", ("?",) * 3)
    print(f"load average at start {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}, at end "
          f"{lb[0]:.2f} {lb[1]:.2f} {lb[2]:.2f}")
    pk = res.get("sgemm_peak")
    if pk:
        print(f"sgemm {pk['peak_dim']}^3: {pk['peak_gflops']:.1f} GFLOP/s")
    head = (f"\n| {'row':<44} | {'libfanoise':>13} | {'PyTorch':>13} | {'lib/torch':>9} "
            f"| {'lib %GEMM':>9} | {'torch %GEMM':>11} | accuracy lib / torch |")
    print(head)
    print("|" + "|".join("-" * (len(c)) for c in head.strip().split("|")[1:-1]) + "|")
    for rec in res["rows"]:
        d = rec["derived"]
        if "lib_rate" in d:
            a_, b_ = fmt_rate(d.get("lib_rate")), fmt_rate(d.get("torch_rate"))
        else:
            a_, b_ = fmt_time(d.get("lib_s")), fmt_time(d.get("torch_s"))
        ratio = f"{d['ratio']:.2f}x" if "ratio" in d else "-"
        lf = f"{100 * d['lib_fraction']:.0f}%" if "lib_fraction" in d else "-"
        tf = f"{100 * d['torch_fraction']:.0f}%" if "torch_fraction" in d else "-"
        acc = "-"
        lib = rec.get("lib") or {}
        if "median_accuracy" in lib:
            acc = f"{lib['median_accuracy']:.4f}"
            peer = rec.get("torch") or {}
            if "median_accuracy" in peer:
                acc += f" / {peer['median_accuracy']:.4f}"
        elif "median_tail_loss" in lib:
            acc = f"loss {lib['median_tail_loss']:.3f}"
            peer = rec.get("torch") or {}
            if "median_tail_loss" in peer:
                acc += f" / {peer['median_tail_loss']:.3f}"
        print(f"| {rec['label']:<44} | {a_:>13} | {b_:>13} | {ratio:>9} | {lf:>9} | {tf:>11} "
              f"| {acc:<20} |")
    rss = res.get("rss") or {}
    if rss.get("lib"):
        lk = rss["lib"]["peak_rss_kb"]
        tk = rss["torch"]["peak_rss_kb"] if rss.get("torch") else None
        print(f"| {'peak RSS, full Fashion-MNIST FA b64 job':<44} | {lk / 1024:>10.1f} MB | "
              + (f"{tk / 1024:>10.1f} MB | {lk / tk:>8.2f}x" if tk else f"{'-':>13} | {'-':>9}")
              + f" | {'-':>9} | {'-':>11} | {rss['lib']['accuracy']:.4f}"
              + (f" / {rss['torch']['accuracy']:.4f}" if tk else "") + " |")
    print("\nGEMM-bound limit: samples/s if a step cost only its sgemm calls at the speed measured"
          " for those shapes right\nafter each libfanoise repetition (median); %GEMM is the median"
          " of the per-repetition fractions for libfanoise,\nPyTorch's median rate over the median"
          " limit for PyTorch. FLOPs per sample: forward 2*in*out per layer, weight\ngradient"
          " 2*in*out per layer, error 2*in*out per layer but the first. The costliest shape comes"
          " from a separate\nper-shape run (bench gemm).")
    for rec in res["rows"]:
        g, d = rec.get("gemm"), rec["derived"]
        if g and "limit" in d:
            big = max(g["gemms"], key=lambda x: x["us"])
            print(f"  {rec['id']:<20} {g['flops_per_sample'] / 1e6:6.3f} MFLOP/sample, GEMMs "
                  f"{g['flops_per_sample'] * d['limit'] * 1e-9:5.1f} GFLOP/s, limit "
                  f"{d['limit']:>9,.0f} samples/s; costliest: {big['op']} layer {big['layer']} "
                  f"{big['m']}x{big['n']}x{big['k']}, {big['gflops']:.0f} GFLOP/s, "
                  f"{100 * big['us'] / g['gemm_step_us']:.0f}% of the GEMM time")
    print("\nTargets:")
    for t in res["targets"]:
        v = t["value"]
        vs = "-" if v is None else (f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}")
        verdict = "n/a" if t["met"] is None else ("met" if t["met"] else "NOT met")
        print(f"  {verdict:<8} {t['target']} (measured {vs})")


if __name__ == "__main__":
    main()
