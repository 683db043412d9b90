// train.cpp - the C++ interface (include/fanoise.hpp) on a small synthetic problem: noise pretraining, then
// feedback-alignment training on four Gaussian clusters. Exits non-zero unless training really
// learns and the error paths behave, so `make cpp-check` tests the wrapper and the library.
#include <fanoise.hpp>

#include <cmath>
#include <cstdio>
#include <random>

namespace {

constexpr size_t kDim = 8, kHidden = 32, kClasses = 4, kSamples = 400;
constexpr uint64_t kDataSeed = 42, kWeightSeed = 1, kFeedbackSeed = 2, kNoiseSeed = 3,
                   kShuffleSeed = 4;
constexpr size_t kNoiseSteps = 300, kEpochs = 20, kBatch = 32;
// Cluster centres sit kSeparation apart along separate axes with unit-variance noise: a problem a
// trained net solves almost perfectly, so the thresholds below leave a wide margin.
constexpr double kSeparation = 4.0;
constexpr double kMinAccuracy = 0.9;

int failures = 0;

void expect(bool ok, const char *what) {
    std::printf("%s: %s\n", ok ? "ok  " : "FAIL", what);
    if (!ok) failures++;
}

fanoise::Dataset clusters() {
    std::mt19937_64 rng(kDataSeed);
    std::normal_distribution<float> noise(0.0f, 1.0f);
    std::vector<float> x(kSamples * kDim);
    std::vector<int32_t> labels(kSamples);
    for (size_t i = 0; i < kSamples; i++) {
        labels[i] = static_cast<int32_t>(i % kClasses);
        for (size_t j = 0; j < kDim; j++)
            x[i * kDim + j] = noise(rng) + (j == i % kClasses ? float(kSeparation) : 0.0f);
    }
    return fanoise::Dataset::from_arrays(x, labels, kDim, kClasses);
}

}  // namespace

int main() {
    fanoise::Dataset data = clusters();
    fanoise::Net net({kDim, kHidden, kClasses});
    net.init(kWeightSeed, kFeedbackSeed).set_rule(FAN_RULE_FA);
    const fanoise::Evaluation before = net.evaluate(data);

    // Noise pretraining with a progress callback that checks every reported loss.
    {
        fanoise::Optimizer adam(net, FAN_OPTIMIZER_ADAM);
        adam.set(FAN_OPT_LR, 1e-3);
        fanoise::Iter noise = fanoise::Iter::noise(kDim, kClasses, kBatch, kNoiseSeed);
        size_t steps = 0;
        bool finite = true;
        net.pretrain_noise(adam, noise, kNoiseSteps, [&](const fan_progress &p) {
            steps = p.step;
            finite = finite && std::isfinite(p.loss);
            return false;
        });
        expect(steps == kNoiseSteps && adam.steps() == kNoiseSteps, "noise pretraining ran every step");
        expect(finite, "every noise loss is finite");
    }

    fanoise::Optimizer sgd(net, FAN_OPTIMIZER_SGD);
    sgd.set(FAN_OPT_LR, 0.05).set(FAN_OPT_MOMENTUM, 0.9);
    {
        // The iterator keeps the dataset alive even if `data` went out of scope first.
        fanoise::Iter batches = fanoise::Iter::batches(data, kBatch, kShuffleSeed);
        net.train(sgd, batches, kEpochs);
    }
    const fanoise::Evaluation after = net.evaluate(data);
    std::printf("loss %.4f -> %.4f, accuracy %.3f -> %.3f, last-layer angle %.1f deg\n",
                before.loss, after.loss, before.accuracy, after.accuracy, net.alignment(1).mean);
    expect(after.loss < 0.5 * before.loss, "training at least halves the loss");
    expect(after.accuracy >= kMinAccuracy, "training reaches 90% accuracy");

    // A callback asking to stop ends the loop after that step.
    {
        fanoise::Iter batches = fanoise::Iter::batches(data, kBatch, kShuffleSeed);
        const uint64_t steps_before = sgd.steps();
        const fan_status st = net.train(sgd, batches, 1, [](const fan_progress &p) { return p.step == 3; });
        expect(st == FAN_STOPPED && sgd.steps() == steps_before + 3, "a callback can stop training");
    }

    // Errors arrive as exceptions with the status and the library's message.
    try {
        fanoise::Net bad({kDim});
        expect(false, "a one-layer size list is rejected");
    } catch (const fanoise::Error &e) {
        expect(e.status() == FAN_E_INVALID, "a one-layer size list throws FAN_E_INVALID");
    }
    try {
        fanoise::Optimizer o(net, FAN_OPTIMIZER_SGD);
        o.set(FAN_OPT_LR, -1.0);
        expect(false, "a negative learning rate is rejected");
    } catch (const fanoise::Error &e) {
        expect(e.status() == FAN_E_INVALID && !e.message().empty(),
               "a negative learning rate throws FAN_E_INVALID with the library's message");
    }
    try {
        fanoise::Iter noise = fanoise::Iter::noise(kDim, kClasses, kBatch, kNoiseSeed);
        net.pretrain_noise(sgd, noise, 5, [](const fan_progress &p) -> bool {
            if (p.step == 2) throw std::runtime_error("from the callback");
            return false;
        });
        expect(false, "an exception in the callback propagates");
    } catch (const std::runtime_error &e) {
        expect(std::string(e.what()) == "from the callback", "an exception in the callback propagates");
    }

    std::printf("%s\n", failures == 0 ? "all checks passed" : "some checks FAILED");
    return failures == 0 ? 0 : 1;
}
