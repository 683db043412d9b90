"""Learning-rate schedules from Python: keyword settings, the rates steps use, callbacks."""
import math
import unittest

from support import fanoise as fn


class TestSchedule(unittest.TestCase):
    def test_cosine_with_warmup_rates_reach_the_callback(self):
        x = [((i * 31) % 17) / 8.0 - 1.0 for i in range(30 * 4)]
        labels = [i % 3 for i in range(30)]
        with fn.Dataset.from_arrays(x, labels, 3, 4) as ds, \
                fn.Net([4, 5, 3], weight_seed=1, feedback_seed=2) as net, \
                fn.Optimizer(net, fn.OptimizerKind.SGD, lr=0.1, warmup_steps=2,
                             schedule=fn.Schedule.COSINE, t_max=6, lr_min=0.01) as opt, \
                fn.Iter.batches(ds, 10, seed=3) as it:
            seen = []
            net.train(opt, it, 3, lambda p: seen.append(p.lr))
            expect = [0.05, 0.1] + [0.01 + 0.09 * (1 + math.cos(math.pi * u / 6)) / 2
                                    for u in range(7)]
            self.assertEqual(len(seen), 9)
            for got, want in zip(seen, expect):
                self.assertAlmostEqual(got, want, places=14)
            self.assertAlmostEqual(opt.scheduled_lr(), 0.01, places=14)
            self.assertAlmostEqual(opt.scheduled_lr(0), 0.05, places=14)


if __name__ == "__main__":
    unittest.main()


class TestValidation(unittest.TestCase):
    def test_early_stopping_reports_and_restores_the_best_epoch(self):
        x = [((i * 7919) % 211) / 105.0 - 1.0 for i in range(60 * 4)]
        labels = [(0 if x[4 * i] > 0.3 else 1 if x[4 * i + 1] > 0 else 2) for i in range(60)]
        shifted = [(l + (1 if i % 3 == 0 else 0)) % 3 for i, l in enumerate(labels)]
        with fn.Dataset.from_arrays(x, labels, 3, 4) as train, \
                fn.Dataset.from_arrays(x, shifted, 3, 4) as val, \
                fn.Net([4, 12, 3], weight_seed=1, feedback_seed=2) as net, \
                fn.Optimizer(net, fn.OptimizerKind.ADAM, lr=0.02) as opt, \
                fn.Iter.batches(train, 10, seed=3) as it:
            seen = {}

            def cb(p):
                if p.validated:
                    seen[p.epoch] = (p.val_loss, net.to_bytes())

            st = net.train(opt, it, 40, cb, validation=val, patience=2, restore_best=True)
            best = min(seen, key=lambda e: seen[e][0])
            if st == fn.Status.EARLY_STOPPED:
                self.assertEqual(max(seen), best + 2)
            self.assertEqual(net.to_bytes(), seen[best][1])
            self.assertEqual(net.evaluate(val)[0], seen[best][0])
            tr, va = train.split_stratified(15, seed=4)
            self.assertEqual((len(tr), len(va)), (45, 15))
            tr.close()
            va.close()
