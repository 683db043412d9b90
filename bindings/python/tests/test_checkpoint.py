"""Checkpoints and state blobs from Python: a resumed run equals the straight one."""
import os
import tempfile
import unittest

import support
from support import fanoise as fn

DIM, CLASSES, N = 6, 3, 40


def dataset(shift=0):
    x = [((i * 7919) % 101) / 50.0 - 1.0 for i in range(N * DIM)]
    labels = [(i + shift) % CLASSES for i in range(N)]
    return fn.Dataset.from_arrays(x, labels, CLASSES, DIM)


def handles(ds):
    net = fn.Net([DIM, 5, CLASSES], weight_seed=1, feedback_seed=2)
    opt = fn.Optimizer(net, fn.OptimizerKind.ADAM, lr=0.01)
    it = fn.Iter.batches(ds, 7, seed=3)
    return net, opt, it


class TestCheckpoint(unittest.TestCase):
    def test_resume_through_a_file_gives_the_same_weights(self):
        with dataset() as ds:
            net, opt, it = handles(ds)
            net.train_steps(opt, it, 9)
            net.train_steps(opt, it, 5)
            straight = net.to_bytes() + opt.to_bytes()
            for h in (it, opt, net):
                h.close()
            net, opt, it = handles(ds)
            net.train_steps(opt, it, 9)
            with tempfile.TemporaryDirectory() as d:
                path = os.path.join(d, "run.ckpt")
                fn.save_checkpoint(path, net, opt, it)
                for h in (it, opt, net):
                    h.close()
                net, opt, it = fn.load_checkpoint(path, ds)
            self.assertEqual(it.epoch, 1)
            net.train_steps(opt, it, 5)
            self.assertEqual(net.to_bytes() + opt.to_bytes(), straight)
            for h in (it, opt, net):
                h.close()

    def test_a_different_dataset_is_refused_with_the_reason(self):
        with dataset() as ds, dataset(shift=1) as other:
            net, opt, it = handles(ds)
            blob = fn.checkpoint_to_bytes(net, opt, it)
            with self.assertRaises(fn.FanoiseError) as cm:
                fn.checkpoint_from_bytes(blob, other)
            self.assertEqual(cm.exception.status, fn.Status.E_INVALID)
            self.assertIn("labels", cm.exception.message)
            with self.assertRaises(fn.FanoiseError) as cm:
                fn.checkpoint_from_bytes(blob)
            self.assertEqual(cm.exception.status, fn.Status.E_NULL)
            net2, opt2, it2 = fn.checkpoint_from_bytes(blob, with_iterator=False)
            self.assertIsNone(it2)
            self.assertEqual(net2.to_bytes(), net.to_bytes())
            for h in (it, opt, net, net2, opt2):
                h.close()

    def test_optimizer_and_iterator_states_round_trip(self):
        with dataset() as ds:
            net, opt, it = handles(ds)
            net.train_steps(opt, it, 3)
            again = fn.Optimizer.from_bytes(opt.to_bytes())
            self.assertEqual(again.steps, 3)
            self.assertEqual(again.kind, fn.OptimizerKind.ADAM)
            other = fn.Iter.batches(ds, 7, seed=99)
            other.set_state(it.state)
            self.assertEqual(support.as_list(other.next_batch().x),
                             support.as_list(it.next_batch().x))
            for h in (other, again, it, opt, net):
                h.close()



class TestMessages(unittest.TestCase):
    def test_a_missing_checkpoint_names_the_file(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "nowhere.ckpt")
            with self.assertRaises(fn.FanoiseError) as cm:
                fn.load_checkpoint(path)
            self.assertEqual(cm.exception.status, fn.Status.E_IO)
            self.assertIn(path, cm.exception.message)
            self.assertIn("No such file", cm.exception.message)

    def test_a_damaged_optimizer_state_says_why(self):
        with fn.Net([3, 2]) as net, fn.Optimizer(net) as opt:
            blob = opt.to_bytes()
            with self.assertRaises(fn.FanoiseError) as cm:
                fn.Optimizer.from_bytes(blob[:-1])
            self.assertEqual(cm.exception.status, fn.Status.E_FORMAT)
            self.assertIn(f"has {len(blob) - 1} bytes", cm.exception.message)


if __name__ == "__main__":
    unittest.main()
