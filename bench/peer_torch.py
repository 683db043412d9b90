#!/usr/bin/python3
"""The PyTorch side of `make bench`: the same rows as bench/bench.c, written the way a PyTorch
user writes them, with the same command line and the same JSON output.

    /usr/bin/python3 bench/peer_torch.py KIND [key=value ...]

KIND and keys are those of bench/bench.c (info, train, noise, diag, rss; sizes, rule, batch,
reps, steps, opt, lr, warmup, eval, data, threads), plus style=autograd|hand. Runs with
Debian's python3 (python3-torch, numpy).

Same job on both sides:
- data: Fashion-MNIST loaded once, standardised with mean 0.286 and std 0.353 (the training
  set's pixel statistics); the torch side holds it as one float32 tensor (what users do), and
  every epoch draws a permutation and gathers each batch by indexing, as the library's iterator
  gathers its shuffled batches;
- nets: dense layers with He-normal W and B (N(0, 2/fan_in)), zero biases, ReLU hidden units,
  softmax cross-entropy;
- FA "the usual way": a custom autograd Function whose backward sends grad_output @ B down
  (B has W's shape) and returns grad_output^T @ input as the weight gradient;
- optimizer: torch.optim.SGD or Adam with the given learning rate;
- threads: torch.set_num_threads(threads); the GEMMs go to the same OpenBLAS (Debian's torch
  calls libblas.so.3, the OpenBLAS alternative on this machine), whose own thread count comes
  from OPENBLAS_NUM_THREADS, set by the driver (bench/run.py says which pool runs the threads).

style=hand is the strongest peer: the same step written by hand under torch.no_grad(), every
buffer allocated once (activations, errors, gradients, optimizer state, the gathered batch),
products into preallocated outputs (torch.addmm/mm with out=) and in-place elementwise updates:
no autograd graph, no allocation per step.
"""
import gzip
import json
import math
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

FMNIST_MEAN = 0.286
FMNIST_STD = 0.353
RSS_BATCH = 64
NOISE_LOSS_TAIL = 50
FEEDBACK_SEED_BASE = 1000
DATA_SEED_BASE = 2000
WARMUP_SEED = 999
MIN_REPS = 3
IDX_IMAGES_HEADER = 16  # magic, count, rows, cols: four big-endian uint32
IDX_LABELS_HEADER = 8   # magic, count


def parse(argv):
    o = dict(sizes=[784, 100, 10], rule="fa", batch=64, reps=5, steps=0, warmup=20, dim=1024,
             eval=1, opt="sgd", lr=0.01, feed="iter", data="/usr/share/datasets/fashion-mnist",
             budget=0.0, threads=1, style="autograd")
    for a in argv:
        k, _, v = a.partition("=")
        if k not in o:
            sys.exit(f"peer_torch: unknown key in '{a}'")
        if k == "sizes":
            o[k] = [int(s) for s in v.split(",")]
        elif k in ("rule", "opt", "feed", "data", "style"):
            o[k] = v
        elif k in ("lr", "budget"):
            o[k] = float(v)
        else:
            o[k] = int(v)
    return o


def load_split(o, prefix):
    with gzip.open(f"{o['data']}/{prefix}-images-idx3-ubyte.gz", "rb") as f:
        raw = f.read()
    images = np.frombuffer(raw, dtype=np.uint8, offset=IDX_IMAGES_HEADER).reshape(-1, 784)
    with gzip.open(f"{o['data']}/{prefix}-labels-idx1-ubyte.gz", "rb") as f:
        labels = np.frombuffer(f.read(), dtype=np.uint8, offset=IDX_LABELS_HEADER)
    x = images.astype(np.float32)
    x /= 255.0
    x -= FMNIST_MEAN
    x /= FMNIST_STD
    return torch.from_numpy(x), torch.from_numpy(labels.astype(np.int64))


class FALinearFunction(torch.autograd.Function):
    """y = x W^T + b; backward sends the error through the fixed feedback matrix B."""

    @staticmethod
    def forward(ctx, x, weight, bias, feedback):
        ctx.save_for_backward(x, feedback)
        return torch.addmm(bias, x, weight.t())

    @staticmethod
    def backward(ctx, grad_out):
        x, feedback = ctx.saved_tensors
        grad_x = grad_out @ feedback if ctx.needs_input_grad[0] else None
        return grad_x, grad_out.t() @ x, grad_out.sum(0), None


class FALinear(torch.nn.Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.empty(n_out, n_in))
        self.bias = torch.nn.Parameter(torch.zeros(n_out))
        self.register_buffer("feedback", torch.empty(n_out, n_in))

    def forward(self, x):
        return FALinearFunction.apply(x, self.weight, self.bias, self.feedback)


def make_net(o, rep):
    sizes = o["sizes"]
    layers = []
    gw = torch.Generator().manual_seed(rep)
    gb = torch.Generator().manual_seed(FEEDBACK_SEED_BASE + rep)
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        lin = FALinear(n_in, n_out) if o["rule"] == "fa" else torch.nn.Linear(n_in, n_out)
        std = math.sqrt(2.0 / n_in)
        with torch.no_grad():
            lin.weight.normal_(0.0, std, generator=gw)
            lin.bias.zero_()
            if o["rule"] == "fa":
                lin.feedback.normal_(0.0, std, generator=gb)
        layers.append(lin)
        if i + 2 < len(sizes):
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def make_opt(o, net):
    if o["opt"] == "adam":
        return torch.optim.Adam(net.parameters(), lr=o["lr"])
    return torch.optim.SGD(net.parameters(), lr=o["lr"])


def train_steps(net, opt, x, y, batch, gen, max_steps=None):
    """Shuffled epochs of gathered batches; one epoch when max_steps is None. Returns samples."""
    n, samples, steps = x.shape[0], 0, 0
    while True:
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, batch):
            if max_steps is not None and steps == max_steps:
                return samples
            idx = perm[i:i + batch]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(net(x[idx]), y[idx])
            loss.backward()
            opt.step()
            samples += idx.shape[0]
            steps += 1
        if max_steps is None:
            return samples


class HandNet:
    """The training step of FA or BP written out by hand, without autograd: preallocated
    buffers, products into them, in-place updates. The same initialisation as make_net."""

    def __init__(self, o, rep, batch):
        sizes, self.rule = o["sizes"], o["rule"]
        gw = torch.Generator().manual_seed(rep)
        gb = torch.Generator().manual_seed(FEEDBACK_SEED_BASE + rep)
        self.W, self.b, self.B = [], [], []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            std = math.sqrt(2.0 / n_in)
            self.W.append(torch.empty(n_out, n_in).normal_(0.0, std, generator=gw))
            self.b.append(torch.zeros(n_out))
            # The same draws as the autograd peer's FALinear buffers.
            fb = torch.empty(n_out, n_in)
            if self.rule == "fa":
                fb.normal_(0.0, std, generator=gb)
            self.B.append(fb)
        self.L = len(self.W)
        self.adam = o["opt"] == "adam"
        self.lr = o["lr"]
        self.t = 0
        self.resize(batch)
        self.dW = [torch.empty_like(w) for w in self.W]
        self.db = [torch.empty_like(b) for b in self.b]
        if self.adam:
            params = self.W + self.b
            self.m = [torch.zeros_like(p) for p in params]
            self.v = [torch.zeros_like(p) for p in params]
            self.den = [torch.empty_like(p) for p in params]

    def resize(self, n):
        sizes = [self.W[0].shape[1]] + [w.shape[0] for w in self.W]
        self.n = n
        self.x = torch.empty(n, sizes[0])
        self.H = [None] + [torch.empty(n, s) for s in sizes[1:]]
        self.D = [None] + [torch.empty(n, s) for s in sizes[1:]]
        self.mask = [None] + [torch.empty(n, s, dtype=torch.bool) for s in sizes[1:]]
        self.onehot = torch.empty(n, sizes[-1])
        self.rowmax = torch.empty(n, 1)
        self.rowsum = torch.empty(n, 1)

    def forward(self, x):
        h = x
        for l in range(self.L):
            torch.addmm(self.b[l], h, self.W[l].t(), out=self.H[l + 1])
            if l + 1 < self.L:
                self.H[l + 1].clamp_(min=0.0)
            h = self.H[l + 1]
        return h

    def step(self, x, y):
        """One training step on x (n x in, already in self.x or any tensor) and labels y;
        returns the mean cross-entropy (a float only when asked, to avoid a sync)."""
        n = x.shape[0]
        if n != self.n:
            self.resize(n)
        z = self.forward(x)
        # Softmax in place, then the output error (p - onehot) / n.
        torch.amax(z, dim=1, keepdim=True, out=self.rowmax)
        z.sub_(self.rowmax).exp_()
        torch.sum(z, dim=1, keepdim=True, out=self.rowsum)
        z.div_(self.rowsum)
        e = self.D[self.L]
        self.onehot.zero_().scatter_(1, y.view(-1, 1), 1.0)
        torch.sub(z, self.onehot, out=e)
        e.div_(n)
        for l in range(self.L - 1, -1, -1):
            h = x if l == 0 else self.H[l]
            torch.mm(self.D[l + 1].t(), h, out=self.dW[l])
            torch.sum(self.D[l + 1], dim=0, out=self.db[l])
            if l > 0:
                m = self.W[l] if self.rule == "bp" else self.B[l]
                torch.mm(self.D[l + 1], m, out=self.D[l])
                torch.le(self.H[l], 0.0, out=self.mask[l])
                self.D[l].masked_fill_(self.mask[l], 0.0)
        self.update()

    def loss(self, y):
        """Mean cross-entropy of the last step (its softmax is in H[L])."""
        p = self.H[self.L].gather(1, y.view(-1, 1))
        return -p.log().mean().item()

    def update(self):
        params, grads = self.W + self.b, self.dW + self.db
        if not self.adam:
            for p, g in zip(params, grads):
                p.sub_(g, alpha=self.lr)
            return
        self.t += 1
        b1, b2, eps = 0.9, 0.999, 1e-8
        step = self.lr / (1.0 - b1 ** self.t)
        bc2 = math.sqrt(1.0 - b2 ** self.t)
        for p, g, m, v, den in zip(params, grads, self.m, self.v, self.den):
            m.mul_(b1).add_(g, alpha=1.0 - b1)
            v.mul_(b2).addcmul_(g, g, value=1.0 - b2)
            torch.sqrt(v, out=den)
            den.div_(bc2).add_(eps)
            p.addcdiv_(m, den, value=-step)

    def accuracy(self, x, y):
        correct = 0
        for i in range(0, x.shape[0], 1000):
            z = x[i:i + 1000]
            for l in range(self.L):
                z = torch.addmm(self.b[l], z, self.W[l].t())
                if l + 1 < self.L:
                    z.clamp_(min=0.0)
            correct += (z.argmax(1) == y[i:i + 1000]).sum().item()
        return correct / x.shape[0]


def hand_steps(net, x, y, batch, gen, max_steps=None):
    """As train_steps, on a HandNet: per batch the gather goes into the preallocated input
    buffer (torch.index_select with out=)."""
    n, samples, steps = x.shape[0], 0, 0
    xb = torch.empty(batch, x.shape[1])
    while True:
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, batch):
            if max_steps is not None and steps == max_steps:
                return samples
            idx = perm[i:i + batch]
            if idx.shape[0] != xb.shape[0]:
                xb = torch.empty(idx.shape[0], x.shape[1])
            torch.index_select(x, 0, idx, out=xb)
            net.step(xb, y[idx])
            samples += idx.shape[0]
            steps += 1
        if max_steps is None:
            return samples


def accuracy(net, x, y):
    with torch.no_grad():
        return (net(x).argmax(1) == y).double().mean().item()


def out_of_time(o, started, done):
    """The driver's time budget (seconds, 0 = none). With MIN_REPS repetitions done, stop once
    the budget is spent; with fewer, stop when the next repetition, as long as the ones so far,
    would end past twice the budget (a heavily loaded machine)."""
    if o["budget"] <= 0 or done == 0:
        return False
    spent = time.perf_counter() - started
    if done >= MIN_REPS:
        return spent > o["budget"]
    return spent + spent / done > 2 * o["budget"]


def header(o, kind):
    return {"side": "pytorch", "kind": kind, "sizes": o["sizes"], "batch": o["batch"],
            "threads": torch.get_num_threads(), "torch": torch.__version__}


def timing(out, sec, cpu, rate):
    out.update(seconds=sec, cpu_seconds=cpu, samples_per_s=rate,
               median_samples_per_s=float(np.median(rate)))


def run_train(o):
    x, y = load_split(o, "train")
    xt, yt = load_split(o, "t10k") if o["eval"] else (None, None)
    steps = o["steps"] or None
    hand = o["style"] == "hand"
    if o["warmup"]:
        if hand:
            hand_steps(HandNet(o, WARMUP_SEED, o["batch"]), x, y, o["batch"],
                       torch.Generator().manual_seed(WARMUP_SEED), o["warmup"])
        else:
            net = make_net(o, WARMUP_SEED)
            train_steps(net, make_opt(o, net), x, y, o["batch"],
                        torch.Generator().manual_seed(WARMUP_SEED), o["warmup"])
    sec, cpu, rate, acc = [], [], [], []
    started = time.perf_counter()
    for r in range(o["reps"]):
        if out_of_time(o, started, r):
            break
        gen = torch.Generator().manual_seed(DATA_SEED_BASE + r)
        if hand:
            net = HandNet(o, r, o["batch"])
            c0, t0 = time.process_time(), time.perf_counter()
            with torch.no_grad():
                samples = hand_steps(net, x, y, o["batch"], gen, steps)
        else:
            net = make_net(o, r)
            opt = make_opt(o, net)
            c0, t0 = time.process_time(), time.perf_counter()
            samples = train_steps(net, opt, x, y, o["batch"], gen, steps)
        sec.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        rate.append(samples / sec[-1])
        if xt is not None:
            acc.append(net.accuracy(xt, yt) if hand else accuracy(net, xt, yt))
        print(f"  pytorch rep {r}: {sec[-1]:.3f} s, {rate[-1]:.0f} samples/s"
              + (f", acc {acc[-1]:.4f}" if acc else ""), file=sys.stderr)
    out = header(o, "train")
    out.update(rule=o["rule"], style=o["style"],
               feed="pre-loaded float tensor, randperm + index per batch", samples=samples)
    timing(out, sec, cpu, rate)
    if acc:
        out.update(accuracy=acc, median_accuracy=float(np.median(acc)))
    return out


def run_noise(o):
    sizes = o["sizes"]
    dim, classes, batch = sizes[0], sizes[-1], o["batch"]
    steps = o["steps"] or 1000
    sec, cpu, rate, tail = [], [], [], []
    started = time.perf_counter()
    for r in range(o["reps"] + 1):  # repetition 0 is the warm-up
        warm = r == 0
        if not warm and out_of_time(o, started, r - 1):
            break
        hand = o["style"] == "hand"
        rep = WARMUP_SEED if warm else r - 1
        gen = torch.Generator().manual_seed(DATA_SEED_BASE + r)
        run = o["warmup"] if warm else steps
        tail_from = max(run - NOISE_LOSS_TAIL, 0)
        tail_sum = 0.0
        if hand:
            net = HandNet(o, rep, batch)
            xb = torch.empty(batch, dim)
            yb = torch.empty(batch, dtype=torch.int64)
            c0, t0 = time.process_time(), time.perf_counter()
            with torch.no_grad():
                for step in range(run):
                    xb.normal_(generator=gen)
                    yb.random_(0, classes, generator=gen)
                    net.step(xb, yb)
                    if step >= tail_from:
                        tail_sum += net.loss(yb)
        else:
            net = make_net(o, rep)
            opt = make_opt(o, net)
            c0, t0 = time.process_time(), time.perf_counter()
            for step in range(run):
                xb = torch.randn(batch, dim, generator=gen)
                yb = torch.randint(0, classes, (batch,), generator=gen)
                opt.zero_grad(set_to_none=True)
                loss = F.cross_entropy(net(xb), yb)
                loss.backward()
                opt.step()
                if step >= tail_from:
                    tail_sum += loss.item()
        s, c = time.perf_counter() - t0, time.process_time() - c0
        if not warm:
            sec.append(s)
            cpu.append(c)
            rate.append(run * batch / s)
            tail.append(tail_sum / (run - tail_from))
            print(f"  pytorch noise rep {r - 1}: {s:.3f} s, {rate[-1]:.0f} samples/s, "
                  f"loss {tail[-1]:.4f}", file=sys.stderr)
    out = header(o, "noise")
    out.update(rule=o["rule"], style=o["style"], samples=steps * batch)
    timing(out, sec, cpu, rate)
    out.update(tail_loss=tail, median_tail_loss=float(np.median(tail)))
    return out


def run_diag(o):
    """The same three diagnostics of weight layer 0: per-unit and whole-matrix angles between W
    and B, singular values (double, as the library computes them) and the effective rank."""
    oo = dict(o, rule="fa")
    layer = make_net(oo, 0)[0]
    w, b = layer.weight.detach(), layer.feedback
    sec = []
    started = time.perf_counter()
    for r in range(o["reps"] + 1):
        if r > 1 and out_of_time(o, started, r - 1):
            break
        t0 = time.perf_counter()
        wd, bd = w.double(), b.double()
        cos = (wd * bd).sum(0) / (wd.norm(dim=0) * bd.norm(dim=0))
        per_unit = torch.rad2deg(torch.acos(cos.clamp(-1.0, 1.0)))
        mean_deg = per_unit.mean().item()
        matrix_cos = (wd * bd).sum() / (wd.norm() * bd.norm())
        matrix_deg = math.degrees(math.acos(max(-1.0, min(1.0, matrix_cos.item()))))
        sv = torch.linalg.svdvals(wd)
        p = sv / sv.sum()
        erank = torch.exp(-(p * torch.log(p)).sum()).item()
        if r > 0:
            sec.append(time.perf_counter() - t0)
    out = header(o, "diag")
    out.update(rows=w.shape[0], cols=w.shape[1], seconds=sec,
               median_seconds=float(np.median(sec)), mean_deg=mean_deg, matrix_deg=matrix_deg,
               sv_max=sv[0].item(), effective_rank=erank)
    return out


def run_rss(o):
    x, y = load_split(o, "train")
    xt, yt = load_split(o, "t10k")
    after_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    oo = dict(o, rule="fa")
    net = make_net(oo, 0)
    t0 = time.perf_counter()
    train_steps(net, make_opt(oo, net), x, y, RSS_BATCH,
                torch.Generator().manual_seed(DATA_SEED_BASE))
    sec = time.perf_counter() - t0
    acc = accuracy(net, xt, yt)
    return {"side": "pytorch", "kind": "rss", "batch": RSS_BATCH, "seconds": sec,
            "accuracy": acc, "rss_after_load_kb": after_load,
            "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: peer_torch.py info|train|noise|diag|rss [key=value ...]")
    kind, o = sys.argv[1], parse(sys.argv[2:])
    torch.set_num_threads(o["threads"])
    if kind == "info":
        out = {"side": "pytorch", "kind": "info", "torch": torch.__version__,
               "numpy": np.__version__, "threads": torch.get_num_threads(),
               "python": sys.version.split()[0]}
    elif kind == "train":
        out = run_train(o)
    elif kind == "noise":
        out = run_noise(o)
    elif kind == "diag":
        out = run_diag(o)
    elif kind == "rss":
        out = run_rss(o)
    else:
        sys.exit(f"peer_torch: unknown kind '{kind}'")
    print(json.dumps(out))


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
