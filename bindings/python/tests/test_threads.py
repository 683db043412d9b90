"""Threads and handle lifetimes: one Net used by several threads at once, and handles closed
while a training loop runs. Each scenario runs in a fresh interpreter, so that a crash (which
these scenarios caused before the binding locked and pinned its handles) is a failed test and
not a dead test runner."""
import os
import subprocess
import sys
import textwrap
import unittest

import support

try:
    import numpy  # noqa: F401 - the scenarios use it in their own interpreter
    HAVE_NUMPY = True
except ImportError:
    HAVE_NUMPY = False

# Scenario prologue: the binding, and sizes large enough that the C library takes the net's
# blocks from mmap (glibc's threshold is 128 KiB), so that a use after free faults at once
# instead of reading stale memory.
PROLOGUE = """
import sys, threading
import numpy as np
import fanoise as fn
SIZES = [784, 256, 10]
"""

# Seconds a scenario may take; they need well under one on this project's machine.
TIMEOUT = 120


def run_scenario(code):
    """Runs PROLOGUE + code in a new interpreter; returns (exit status, stdout, stderr)."""
    env = dict(os.environ, PYTHONPATH=support.BINDING_DIR, OPENBLAS_NUM_THREADS="1",
               MALLOC_PERTURB_="165")
    env.pop("FANOISE_NO_NUMPY", None)  # the scenarios build their inputs with numpy
    r = subprocess.run([sys.executable, "-c", PROLOGUE + textwrap.dedent(code)],
                       capture_output=True, text=True, env=env, timeout=TIMEOUT)
    return r.returncode, r.stdout, r.stderr


@unittest.skipUnless(HAVE_NUMPY, "the scenarios need numpy")
class TestOneNetManyThreads(unittest.TestCase):
    def assert_scenario_ok(self, code):
        rc, out, err = run_scenario(code)
        self.assertEqual(rc, 0, f"exit status {rc}\nstdout: {out}\nstderr: {err[-3000:]}")
        self.assertIn("ok", out.split())

    def test_threads_training_and_running_one_net_at_different_batch_sizes(self):
        # Each thread asks for its own batch size, so the net's workspace is reallocated under
        # the other threads' feet unless calls on the net are serialised.
        self.assert_scenario_ok("""
            net = fn.Net(SIZES, weight_seed=1)
            opt = fn.Optimizer(net, fn.OptimizerKind.SGD, lr=1e-3)
            errors = []
            def work(k):
                try:
                    n = 1 + 37 * k
                    x = np.random.default_rng(k).standard_normal((n, 784)).astype(np.float32)
                    labels = np.arange(n, dtype=np.int32) % 10
                    for step in range(40):
                        if k % 2:
                            net.train_batch(opt, x, labels)
                        else:
                            p = net.forward(x)
                            assert len(p) == n
                        net.loss_value(x[:1 + step % n], labels[:1 + step % n])
                except BaseException as e:
                    errors.append(repr(e))
            threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
            for t in threads: t.start()
            for t in threads: t.join()
            assert not errors, errors
            assert opt.steps == 80, opt.steps
            print("ok")
        """)

    def test_concurrent_forward_passes_give_the_single_threaded_result(self):
        self.assert_scenario_ok("""
            net = fn.Net(SIZES, weight_seed=2)
            xs = [np.random.default_rng(k).standard_normal((1 + 50 * k, 784)).astype(np.float32)
                  for k in range(4)]
            ref = [net.forward(x) for x in xs]
            bad = []
            def work(k):
                for _ in range(30):
                    if not np.array_equal(net.forward(xs[k]), ref[k]):
                        bad.append(k)
            threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
            for t in threads: t.start()
            for t in threads: t.join()
            assert not bad, bad
            print("ok")
        """)

    def test_close_from_another_thread_waits_for_the_running_loop(self):
        self.assert_scenario_ok("""
            net = fn.Net(SIZES)
            opt = fn.Optimizer(net, fn.OptimizerKind.ADAM)
            noise = fn.Iter.noise(784, 10, 64, seed=3)
            started, steps = threading.Event(), []
            def callback(p):
                steps.append(p.step)
                started.set()
            result = []
            trainer = threading.Thread(
                target=lambda: result.append(net.pretrain_noise(opt, noise, 60, callback)))
            trainer.start()
            started.wait()
            # Each blocks until the loop has returned, then frees.
            net.close()
            opt.close()
            noise.close()
            trainer.join()
            assert result == [fn.Status.OK], result
            assert len(steps) == 60, len(steps)
            assert net.closed and opt.closed and noise.closed
            print("ok")
        """)


@unittest.skipUnless(HAVE_NUMPY, "the scenarios need numpy")
class TestClosingInsideCallbacks(unittest.TestCase):
    def closing_scenario(self, what):
        """A loop whose callback closes `what` at step 3: the close raises E_STATE, which stops
        the loop and propagates; everything still works afterwards."""
        rc, out, err = run_scenario(f"""
            x = np.random.default_rng(0).random((300, 784), dtype=np.float32)
            ds = fn.Dataset.from_arrays(x, np.arange(300, dtype=np.int32) % 10)
            net = fn.Net(SIZES)
            opt = fn.Optimizer(net, fn.OptimizerKind.ADAM)
            it = fn.Iter.batches(ds, 64, seed=1)
            handles = dict(net=net, opt=opt, it=it, ds=ds)
            def callback(p):
                if p.step == 3:
                    handles["{what}"].close()
            try:
                net.train(opt, it, 2, callback)
                print("no error")
            except fn.FanoiseError as e:
                assert e.status == fn.Status.E_STATE, e
                assert "running training loop" in e.message, e.message
            assert opt.steps == 3, opt.steps
            assert not handles["{what}"].closed
            # The handles still work, and close normally once the loop has returned.
            assert net.train(opt, it, 1) == fn.Status.OK
            for h in (it, ds, opt, net):
                h.close()
            print("ok")
        """)
        self.assertEqual(rc, 0, f"exit status {rc}\nstdout: {out}\nstderr: {err[-3000:]}")
        self.assertEqual(out.split(), ["ok"])

    def test_closing_the_net_inside_a_callback_raises(self):
        self.closing_scenario("net")

    def test_closing_the_optimizer_inside_a_callback_raises(self):
        self.closing_scenario("opt")

    def test_closing_the_iterator_inside_a_callback_raises(self):
        self.closing_scenario("it")

    def test_closing_the_dataset_inside_a_callback_raises(self):
        self.closing_scenario("ds")

    def test_a_callback_may_use_the_loops_handles(self):
        rc, out, err = run_scenario("""
            net = fn.Net(SIZES)
            opt = fn.Optimizer(net)
            noise = fn.Iter.noise(784, 10, 16, seed=5)
            seen = []
            def callback(p):
                # Re-entrant calls on the pinned handles from the loop's own thread.
                seen.append((net.sizes, opt.steps, noise.dim))
                if p.step == 2:
                    net.forward(np.zeros((300, 784), np.float32))  # grows the workspace
            assert net.pretrain_noise(opt, noise, 4, callback) == fn.Status.OK
            assert [s[1] for s in seen] == [1, 2, 3, 4], seen
            print("ok")
        """)
        self.assertEqual(rc, 0, f"exit status {rc}\nstdout: {out}\nstderr: {err[-3000:]}")
        self.assertEqual(out.split(), ["ok"])


if __name__ == "__main__":
    unittest.main()
