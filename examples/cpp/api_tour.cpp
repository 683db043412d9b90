// api_tour.cpp - the rest of include/fanoise.hpp in one run: datasets (arrays, subsets, splits,
// transforms, CSV and .npy from memory), a net's settings, matrices, gradients, saving and
// loading, NumPy export, checkpoints and exact resume, validation with early stopping,
// diagnostics and the generic spectral functions. Each step checks a value
// that would be wrong if the wrapper passed the wrong thing to the C API; exits non-zero on any
// failure, so `make cpp-check` tests the header as a user's program would use it.
#include <fanoise.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <unistd.h>

namespace {

int failures = 0;

void expect(bool ok, const char *what) {
    std::printf("%s: %s\n", ok ? "ok  " : "FAIL", what);
    if (!ok) failures++;
}

constexpr size_t kSide = 4, kDim = kSide * kSide, kClasses = 3, kSamples = 30;

fanoise::Dataset images() {
    std::vector<uint8_t> px(kSamples * kDim);
    std::vector<int32_t> labels(kSamples);
    for (size_t i = 0; i < kSamples; i++) {
        labels[i] = static_cast<int32_t>(i % kClasses);
        for (size_t j = 0; j < kDim; j++) px[i * kDim + j] = static_cast<uint8_t>((i * 7 + j * 13) % 256);
    }
    return fanoise::Dataset::from_u8(px, labels, kSide, kSide, 1, kClasses);
}

void datasets() {
    fanoise::Dataset ds = images();
    const fanoise::ImageShape s = ds.shape();
    expect(ds.size() == kSamples && ds.dim() == kDim && s.width == kSide && s.channels == 1,
           "a uint8 dataset has its size and image shape");
    const std::vector<size_t> counts = ds.class_counts();
    expect(counts.size() == kClasses && counts[0] == kSamples / kClasses, "class counts");
    const fanoise::Sample first = ds.get(0);
    expect(first.label == 0 && first.x.size() == kDim && std::fabs(first.x[1] - 13.0 / 255.0) < 1e-6,
           "a sample comes back scaled to [0, 1]");
    const std::pair<double, double> st = ds.compute_stats();
    ds.standardize(st.first, st.second);
    expect(st.second > 0.0 && std::fabs(ds.get(0).x[0] - (0.0 - st.first) / st.second) < 1e-5,
           "standardisation uses the computed statistics");
    std::pair<fanoise::Dataset, fanoise::Dataset> parts = ds.split(6, 1);
    expect(parts.first.size() == kSamples - 6 && parts.second.size() == 6, "split sizes");
    parts = ds.split_stratified(6, 1);
    expect(parts.second.class_counts() == std::vector<size_t>(kClasses, 6 / kClasses),
           "a stratified split takes every class in proportion");
    try {
        ds.subset_first(kSamples + 1);
        expect(false, "a subset larger than the dataset throws");
    } catch (const fanoise::Error &e) {
        expect(e.status() == FAN_E_INVALID && e.message().find("31") != std::string::npos,
               "a failed constructor says why (the _ex variants' message)");
    }
    expect(ds.subset_first(5).size() == 5 && ds.subset_random(7, 2).size() == 7 &&
               ds.subset_stratified(2, 3).size() == 2 * kClasses &&
               ds.subset_indices({0, 0, 4}).get(2).label == 1,
           "subsets");
    expect(ds.translate(1, 0).size() == kSamples && ds.rotate(90).size() == kSamples &&
               ds.scale(1.5).size() == kSamples && ds.resize(8, 8).dim() == 64,
           "transforms");
    const std::string csv = "1,2,0\n3,4,1\n5,6,2\n";
    fanoise::Dataset c = fanoise::Dataset::load_csv_mem(csv.data(), csv.size());
    expect(c.size() == 3 && c.dim() == 2 && c.get(1).x[1] == 4.0f, "CSV from memory");
    try {
        const std::string junk = "not a .npy file at all";
        fanoise::Dataset::load_npy_mem(junk.data(), junk.size(), junk.data(), junk.size());
        expect(false, "a bad .npy buffer throws");
    } catch (const fanoise::Error &e) {
        expect(e.status() == FAN_E_FORMAT && e.message().find("magic") != std::string::npos,
               "a bad .npy buffer throws FAN_E_FORMAT with the loader's message");
    }
}

void nets() {
    fanoise::Net net({kDim, 8, kClasses});
    net.init(1, 2).set_rule(FAN_RULE_FA).set_activation(0, FAN_ACT_TANH).set_loss(FAN_LOSS_CROSS_ENTROPY);
    net.set(FAN_NET_LEAKY_SLOPE, 0.2).set_initializer(FAN_MATRIX_FEEDBACK, FAN_INIT_LECUN_NORMAL);
    expect(std::fabs(net.get(FAN_NET_LEAKY_SLOPE) - 0.2) < 1e-7 && net.activation(0) == FAN_ACT_TANH &&
               net.loss() == FAN_LOSS_CROSS_ENTROPY && net.seeds().second == 2,
           "settings read back");
    expect(net.num_layers() == 2 && net.layer_inputs(1) == 8 && net.layer_outputs(1) == kClasses &&
               net.input_size() == kDim && net.output_size() == kClasses &&
               net.num_params() == kDim * 8 + 8 + 8 * kClasses + kClasses,
           "shapes");
    const fanoise::Shape fb = net.feedback_shape(1);
    expect(fb.rows == kClasses && fb.cols == 8 && net.feedback(1).size() == kClasses * 8,
           "feedback shape and matrix");
    fanoise::Layer l1 = net.weights(1);
    l1.b[0] = 0.5f;
    net.set_weights(1, {}, l1.b);
    net.set_feedback(1, l1.w);
    expect(net.weights(1).b[0] == 0.5f && net.feedback(1) == net.weights(1).w, "set weights and feedback");

    fanoise::Dataset ds = images();
    std::vector<float> x(4 * kDim);
    std::vector<int32_t> y = {0, 1, 2, 0};
    for (size_t i = 0; i < 4; i++) {
        const fanoise::Sample s = ds.get(i);
        std::copy(s.x.begin(), s.x.end(), x.begin() + static_cast<long>(i * kDim));
    }
    const std::vector<float> p = net.forward(x);
    expect(p.size() == 4 * kClasses && std::fabs(p[0] + p[1] + p[2] - 1.0f) < 1e-5f, "forward gives probabilities");
    const float loss = net.compute_gradients(x, y);
    expect(std::fabs(loss - net.loss_value(x, y)) < 1e-5, "gradients' loss equals loss_value");
    std::vector<float> targets(4 * kClasses, 1.0f / kClasses);
    expect(net.compute_gradients_targets(x, targets) > 0.0f, "soft targets");
    fanoise::Layer g = net.gradients(0);
    net.set_gradients(0, g.w, g.b);
    fanoise::Optimizer sgd(net, FAN_OPTIMIZER_SGD);
    sgd.set(FAN_OPT_LR, 0.1);
    const fanoise::Bounds b = fanoise::Optimizer::param_bounds(FAN_OPT_LR);
    expect(sgd.get(FAN_OPT_LR) == 0.1 && b.def == 0.01 && sgd.kind() == FAN_OPTIMIZER_SGD, "optimizer settings");
    sgd.step(net);
    net.train_batch(sgd, x, y);
    net.train_batch_targets(sgd, x, targets);
    expect(sgd.steps() == 3, "step, train_batch and train_batch_targets each step once");
    sgd.reset();
    expect(sgd.steps() == 0, "reset");
    fanoise::Iter it = fanoise::Iter::batches(ds, 8, 5);
    it.set(FAN_ITER_SHUFFLE, 0);
    expect(it.get(FAN_ITER_SHUFFLE) == 0.0 && it.batches_per_epoch() == 4 && !it.is_noise() &&
               it.dim() == kDim && it.classes() == kClasses,
           "batch iterator settings");
    net.train_steps(sgd, it, 5);
    it.reset();
    const fanoise::Batch first = it.next();
    expect(first.n == 8 && first.labels[1] == 1, "an unshuffled iterator restarts at sample 0");

    // Save and load, in memory and on disk, and NumPy files.
    const std::vector<unsigned char> bytes = net.save_mem();
    fanoise::Net copy = fanoise::Net::load_mem(bytes.data(), bytes.size());
    fanoise::Net copy3 = fanoise::Net::load_mem(bytes.data(), bytes.size(), fanoise::CreateOptions());
    try {
        fanoise::Net::load_mem(bytes.data(), bytes.size(), fanoise::CreateOptions(nullptr, 100));
        expect(false, "a model above the load budget throws");
    } catch (const fanoise::Error &e) {
        expect(e.status() == FAN_E_LIMIT && copy3.num_params() == net.num_params(),
               "a model above the load budget throws FAN_E_LIMIT");
    }
    fanoise::Net copy2 = fanoise::Net::load_mem_quiet(bytes.data(), bytes.size());
    expect(copy.weights(0).w == net.weights(0).w && copy2.clone().weights(1).b == net.weights(1).b,
           "a net saved to memory loads back identical");
    char dir[] = "/tmp/fan_hpp_XXXXXX";
    if (mkdtemp(dir) != nullptr) {
        const std::string d(dir);
        net.save(d + "/m.fan");
        expect(fanoise::Net::load(d + "/m.fan").weights(0).w == net.weights(0).w &&
                   fanoise::Net::load(d + "/m.fan", fanoise::CreateOptions()).num_params() == net.num_params() &&
                   fanoise::Net::load_quiet(d + "/m.fan").num_params() == net.num_params(),
               "a net saved to a file loads back identical");
        net.export_npy(d);
        fanoise::Net other({kDim, 8, kClasses});
        other.import_npy(d);
        expect(other.weights(1).w == net.weights(1).w && other.feedback(0) == net.feedback(0),
               "NumPy export and import");
        for (const char *f : {"m.fan", "weights_0.npy", "bias_0.npy", "feedback_0.npy",
                              "weights_1.npy", "bias_1.npy", "feedback_1.npy"})
            std::remove((d + "/" + f).c_str());
        rmdir(dir);
    }
    try {
        fanoise::Net::load("/nonexistent/model.fan");
        expect(false, "a missing model throws");
    } catch (const fanoise::Error &e) {
        expect(e.status() == FAN_E_IO && e.message().find("/nonexistent/model.fan") != std::string::npos,
               "a missing model throws FAN_E_IO naming the file");
    }

    // Diagnostics.
    const fanoise::Alignment a = net.alignment(1);
    expect(a.per_unit.size() == 8 && a.mean > 0.0 && a.mean < 180.0, "alignment");
    expect(net.delta_alignment(x, y).size() == 2, "delta alignment per layer");
    const std::vector<double> sv = net.singular_values(0);
    const fanoise::Spectrum s = fanoise::spectrum_summary(sv);
    expect(sv.size() == 8 && std::fabs(s.effective_rank - net.effective_rank(0)) < 1e-9 &&
               std::fabs(s.stable_rank - net.stable_rank(0)) < 1e-9 &&
               std::fabs(s.participation_ratio - net.participation_ratio(0)) < 1e-9,
           "spectrum summaries agree with the per-matrix diagnostics");
    const std::pair<std::vector<double>, fanoise::Spectrum> one = net.spectrum(0);
    expect(one.first == sv && one.second.effective_rank == s.effective_rank &&
               one.second.stable_rank == s.stable_rank &&
               one.second.participation_ratio == s.participation_ratio,
           "one SVD gives the same values and summaries");
    expect(net.singular_values(1, FAN_MATRIX_FEEDBACK).size() == kClasses &&
               net.principal_angles(1, 2).size() == 2,
           "feedback spectrum and principal angles");
    const fanoise::Readout r = net.readout(x, 5);
    double total = 0.0;
    for (double h : r.hist) total += h;
    expect(std::fabs(total - 1.0) < 1e-9 && r.mean_max_prob > 0.0, "readout histogram sums to 1");
    expect(net.gram_dimensionality(1, ds) > 0.0 && net.calibration_error(ds, 10) >= 0.0,
           "Gram dimensionality and calibration error");

    const std::vector<float> m = {3, 0, 0, 4};
    expect(fanoise::matrix_singular_values(m, 2, 2)[0] == 4.0 &&
               fanoise::matrix_effective_rank(m, 2, 2) > 1.0 &&
               fanoise::matrix_participation_ratio(m, 2, 2) > 1.0 &&
               fanoise::matrix_stable_rank(m, 2, 2) > 1.0 &&
               std::fabs(fanoise::matrix_angle({1, 0}, {0, 1}) - 90.0) < 1e-9,
           "generic spectral functions");
    expect(std::string(fanoise::name(FAN_RULE_FA)) == "fa" &&
               std::string(fanoise::name(FAN_OPTIMIZER_ADAM)) == "adam" &&
               std::string(fanoise::name(FAN_ACT_RELU)) == "relu" &&
               std::string(fanoise::name(FAN_LOSS_MSE)) == "mse" &&
               std::string(fanoise::name(FAN_INIT_HE_NORMAL)) == "he_normal" &&
               fanoise::version_number() == FANOISE_VERSION_NUMBER &&
               std::string(fanoise::version_string()) == FANOISE_VERSION_STRING &&
               std::string(fanoise::strerror(FAN_E_SHAPE)).size() > 0,
           "names and versions");
}

}  // namespace

// Checkpoints: training 2 epochs straight equals 1 epoch, checkpoint, load, 1 more epoch.
void long_runs() {
    fanoise::Dataset ds = images();
    std::pair<fanoise::Dataset, fanoise::Dataset> parts = ds.split_stratified(6, 7);
    auto fresh = [&]() {
        fanoise::Net n({kDim, 8, kClasses});
        n.init(3, 4);
        return n;
    };
    fanoise::Net straight = fresh();
    {
        fanoise::Optimizer adam(straight, FAN_OPTIMIZER_ADAM);
        fanoise::Iter it = fanoise::Iter::batches(parts.first, 4, 9);
        straight.train(adam, it, 2);
    }
    std::vector<unsigned char> bytes;
    {
        fanoise::Net half = fresh();
        fanoise::Optimizer adam(half, FAN_OPTIMIZER_ADAM);
        fanoise::Iter it = fanoise::Iter::batches(parts.first, 4, 9);
        half.train(adam, it, 1);
        bytes = fanoise::checkpoint_save_mem(half, &adam, &it);
        const std::vector<unsigned char> st = it.state(), os = adam.save_mem();
        fanoise::Optimizer copy = fanoise::Optimizer::load_mem(os.data(), os.size());
        it.set_state(st);
        expect(copy.steps() == adam.steps() && it.epoch() == 1 &&
                   copy.scheduled_lr(0) == adam.get(FAN_OPT_LR),
               "optimizer and iterator states round-trip");
    }
    fanoise::Checkpoint c = fanoise::checkpoint_load_mem(bytes.data(), bytes.size(), &parts.first);
    expect(c.optimizer && c.iter, "a checkpoint gives back the optimizer and the iterator");
    c.net.train(*c.optimizer, *c.iter, 1);
    expect(c.net.weights(0).w == straight.weights(0).w, "resuming from a checkpoint is exact");
    char dir[] = "/tmp/fan_hpp_ckpt_XXXXXX";
    if (mkdtemp(dir) != nullptr) {
        const std::string path = std::string(dir) + "/run.ckpt";
        fanoise::checkpoint_save(path, c.net, c.optimizer.get());
        fanoise::Checkpoint d = fanoise::checkpoint_load(path, nullptr, true, false);
        expect(d.optimizer && !d.iter && d.net.weights(1).b == c.net.weights(1).b,
               "a checkpoint file without an iterator");
        std::remove(path.c_str());
        rmdir(dir);
    }
    // Views and the gradient hook: a hook that zeroes every gradient makes steps change nothing.
    fanoise::Net frozen = fresh();
    const fanoise::FloatView pv = frozen.parameters();
    const std::vector<float> before(pv.data, pv.data + pv.size);
    struct Zero {
        static fan_status hook(fan_net *n, void *) {
            float *g = nullptr;
            size_t len = 0;
            const fan_status st = fan_net_gradients(n, &g, &len);
            for (size_t i = 0; st == FAN_OK && i < len; i++) g[i] = 0.0f;
            return st;
        }
    };
    frozen.set_gradient_hook(&Zero::hook, nullptr);
    {
        fanoise::Optimizer sgd(frozen, FAN_OPTIMIZER_SGD);
        fanoise::Iter noise = fanoise::Iter::noise(kDim, kClasses, 4, 1);
        frozen.pretrain_noise(sgd, noise, 3);
    }
    expect(pv.size == frozen.num_params() && std::vector<float>(pv.data, pv.data + pv.size) == before &&
               frozen.gradients().size == pv.size,
           "a gradient hook sees the gradients through the view and can cancel the update");
    // Validation every epoch with early stopping and the best weights put back.
    fanoise::Net net = fresh();
    fanoise::Optimizer sgd(net, FAN_OPTIMIZER_SGD);
    sgd.set(FAN_OPT_LR, 0.05);
    fanoise::Iter it = fanoise::Iter::batches(parts.first, 4, 9);
    fanoise::TrainOptions o;
    o.validation = &parts.second;
    o.patience = 2;
    o.restore_best = true;
    size_t validated = 0;
    const fan_status st = net.train_v2(sgd, it, 6, o, [&](const fan_progress &p) {
        validated += p.validated ? 1 : 0;
        return false;
    });
    expect((st == FAN_OK || st == FAN_EARLY_STOPPED) && validated >= 1,
           "train_v2 validates every epoch and may stop early");
}

int main() {
    datasets();
    nets();
    long_runs();
    std::printf("%s\n", failures == 0 ? "all checks passed" : "some checks FAILED");
    return failures == 0 ? 0 : 1;
}
