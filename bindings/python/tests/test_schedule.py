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
