#!/usr/bin/env python3
"""The paper's experiment (Cheon, Lee, Paik, NeurIPS 2024): two feedback-alignment nets with the
same seeds; one first trains on random noise, then both train on Fashion-MNIST.
Usage: noise_then_data.py [noise_steps=8000] [train_samples=10000] [epochs=5]"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bindings", "python"))  # build-tree package
import fanoise as fn  # noqa: E402

noise_steps, n_train, epochs = [int(a) for a in sys.argv[1:4]] + [8000, 10000, 5][len(sys.argv[1:4]):]
roots = [os.path.join(HERE, "..", "..", "data", "fashion-mnist"), "/usr/share/datasets/fashion-mnist"]
root = next(r for r in roots if os.path.exists(os.path.join(r, "t10k-labels-idx1-ubyte.gz")))


def load(split):
    ds = fn.Dataset.load_idx(f"{root}/{split}-images-idx3-ubyte.gz", f"{root}/{split}-labels-idx1-ubyte.gz")
    ds.standardize(0.286, 0.353)  # the training set's pixel mean and std
    return ds


with load("train") as full, load("t10k") as test, full.subset_first(n_train) as train:
    for pretrain in (True, False):
        with fn.Net([784, 100, 10], rule=fn.Rule.FA, weight_seed=1, feedback_seed=2) as net:
            if pretrain:  # the recipe that aligns W with B robustly: Adam, lr 1e-4, batch 64
                with fn.Optimizer(net, fn.OptimizerKind.ADAM, lr=1e-4) as adam, fn.Iter.noise(784, 10, 64, seed=3) as noise:
                    net.pretrain_noise(adam, noise, noise_steps)
            with fn.Optimizer(net, fn.OptimizerKind.SGD, lr=0.01) as sgd, fn.Iter.batches(train, 64, seed=4) as batches:
                net.train(sgd, batches, epochs)
            _, accuracy = net.evaluate(test)
            angle = fn.alignment(net, 1).mean  # last layer: hidden units' W columns vs B columns
            print(f"FA {'after noise  ' if pretrain else 'without noise'}: test accuracy {accuracy:.4f}, "
                  f"last-layer angle {angle:.1f} deg")
