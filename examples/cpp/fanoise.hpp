// fanoise.hpp - a small C++17 RAII layer over the C API of libfanoise, kept in the examples on
// purpose: the library's ABI is the C header, and C++ users may copy this file and adapt it.
//
// Every handle lives in a std::unique_ptr with a deleter that calls the matching fan_*_free, so
// nothing leaks on any path; a failing call throws fanoise::error carrying the status and the
// handle's detail message. Datasets are shared (std::shared_ptr) because the C iterator borrows
// its dataset: an Iter keeps the dataset it reads alive for as long as it exists.
#ifndef FANOISE_HPP
#define FANOISE_HPP

#include <fanoise.h>

#include <cstdint>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace fanoise {

class error : public std::runtime_error {
public:
    error(fan_status status, const std::string &what)
        : std::runtime_error(what + ": " + fan_strerror(status)), status_(status) {}
    fan_status status() const noexcept { return status_; }

private:
    fan_status status_;
};

namespace detail {
// FAN_DONE and FAN_STOPPED are outcomes, not failures; callers that care look at the result.
inline fan_status check(fan_status st, const char *errmsg) {
    if (st != FAN_OK && st != FAN_DONE && st != FAN_STOPPED)
        throw error(st, errmsg != nullptr && errmsg[0] != '\0' ? errmsg : "libfanoise");
    return st;
}
struct net_free { void operator()(fan_net *p) const noexcept { fan_net_free(p); } };
struct optimizer_free { void operator()(fan_optimizer *p) const noexcept { fan_optimizer_free(p); } };
struct dataset_free { void operator()(fan_dataset *p) const noexcept { fan_dataset_free(p); } };
struct iter_free { void operator()(fan_iter *p) const noexcept { fan_iter_free(p); } };
}  // namespace detail

class Dataset {
public:
    static Dataset from_arrays(const std::vector<float> &x, const std::vector<int32_t> &labels,
                               size_t dim, size_t classes) {
        if (dim == 0 || x.size() != labels.size() * dim)
            throw error(FAN_E_SHAPE, "Dataset::from_arrays: x is not labels.size() rows of dim");
        fan_dataset *ds = nullptr;
        detail::check(fan_dataset_from_arrays(&ds, x.data(), labels.data(), labels.size(), dim,
                                              classes, nullptr),
                      "fan_dataset_from_arrays");
        return Dataset(ds);
    }
    static Dataset load_idx(const std::string &images, const std::string &labels) {
        fan_dataset *ds = nullptr;
        detail::check(fan_dataset_load_idx(&ds, images.c_str(), labels.c_str(), nullptr),
                      ("fan_dataset_load_idx(" + images + ")").c_str());
        return Dataset(ds);
    }
    void standardize(double mean, double std) {
        detail::check(fan_dataset_set_normalization(get(), FAN_NORM_STANDARDIZE, mean, std),
                      fan_dataset_errmsg(get()));
    }
    size_t size() const noexcept { return fan_dataset_size(get()); }
    size_t dim() const noexcept { return fan_dataset_dim(get()); }
    size_t classes() const noexcept { return fan_dataset_classes(get()); }
    fan_dataset *get() const noexcept { return ds_.get(); }
    std::shared_ptr<fan_dataset> shared() const noexcept { return ds_; }

private:
    explicit Dataset(fan_dataset *ds) : ds_(ds, detail::dataset_free{}) {}
    std::shared_ptr<fan_dataset> ds_;
};

// A batch borrowed from an iterator: valid until the iterator's next call.
struct BatchView {
    const float *x;
    const int32_t *labels;  // nullptr with soft labels
    size_t n;               // 0 at the end of an epoch
};

class Iter {
public:
    static Iter batches(const Dataset &ds, size_t batch, uint64_t seed) {
        fan_iter *it = nullptr;
        detail::check(fan_iter_create_batches(&it, ds.get(), batch, seed, nullptr),
                      "fan_iter_create_batches");
        return Iter(it, ds.shared());
    }
    static Iter noise(size_t dim, size_t classes, size_t batch, uint64_t seed) {
        fan_iter *it = nullptr;
        detail::check(fan_iter_create_noise(&it, dim, classes, batch, seed, nullptr),
                      "fan_iter_create_noise");
        return Iter(it, nullptr);
    }
    void set(fan_iter_param p, double value) {
        detail::check(fan_iter_set(get(), p, value), fan_iter_errmsg(get()));
    }
    BatchView next() {
        BatchView b{nullptr, nullptr, 0};
        detail::check(fan_iter_next(get(), &b.x, &b.labels, nullptr, &b.n), fan_iter_errmsg(get()));
        return b;
    }
    fan_iter *get() const noexcept { return it_.get(); }

private:
    Iter(fan_iter *it, std::shared_ptr<fan_dataset> ds) : ds_(std::move(ds)), it_(it) {}
    // Members are destroyed in reverse order of declaration: the iterator goes first, then
    // (perhaps) the dataset it borrowed.
    std::shared_ptr<fan_dataset> ds_;
    std::unique_ptr<fan_iter, detail::iter_free> it_;
};

class Net;

class Optimizer {
public:
    Optimizer(const Net &net, fan_optimizer_kind kind);
    Optimizer &set(fan_optimizer_param p, double value) {
        detail::check(fan_optimizer_set(get(), p, value), fan_optimizer_errmsg(get()));
        return *this;
    }
    uint64_t steps() const noexcept { return fan_optimizer_steps(get()); }
    fan_optimizer *get() const noexcept { return opt_.get(); }

private:
    std::unique_ptr<fan_optimizer, detail::optimizer_free> opt_;
};

struct Evaluation {
    double loss;
    double accuracy;
};

class Net {
public:
    explicit Net(const std::vector<size_t> &sizes) {
        fan_net *net = nullptr;
        detail::check(fan_net_create(&net, sizes.data(), sizes.size(), nullptr),
                      "fan_net_create");
        net_.reset(net);
    }
    Net &init(uint64_t weight_seed, uint64_t feedback_seed) {
        check(fan_net_init(get(), weight_seed, feedback_seed));
        return *this;
    }
    Net &rule(fan_rule r) {
        check(fan_net_set_rule(get(), r));
        return *this;
    }
    fan_rule rule() const noexcept { return fan_net_rule(get()); }
    size_t num_layers() const noexcept { return fan_net_num_layers(get()); }

    // Progress callbacks: any callable taking const fan_progress & and returning bool (true
    // stops). An exception thrown by it is caught at the C boundary and rethrown here.
    template <class F>
    fan_status pretrain_noise(Optimizer &opt, Iter &noise, size_t steps, F &&on_step) {
        return run(fan_pretrain_noise, opt, noise, steps, std::forward<F>(on_step));
    }
    template <class F>
    fan_status train(Optimizer &opt, Iter &batches, size_t epochs, F &&on_step) {
        return run(fan_train, opt, batches, epochs, std::forward<F>(on_step));
    }
    fan_status train(Optimizer &opt, Iter &batches, size_t epochs) {
        return check(fan_train(get(), opt.get(), batches.get(), epochs, nullptr, nullptr));
    }
    Evaluation evaluate(const Dataset &ds) {
        Evaluation e{0.0, 0.0};
        check(fan_net_evaluate(get(), ds.get(), &e.loss, &e.accuracy));
        return e;
    }
    // Mean per-unit angle between forward and feedback weights of layer `layer`, in degrees.
    double alignment(size_t layer) const {
        double mean = 0.0;
        check(fan_diag_alignment(get(), layer, nullptr, 0, &mean, nullptr));
        return mean;
    }
    double effective_rank(size_t layer, fan_matrix which = FAN_MATRIX_WEIGHTS) const {
        double erank = 0.0;
        check(fan_diag_effective_rank(get(), layer, which, &erank));
        return erank;
    }
    // Mean over the rows of x of the largest softmax output (chance level is 1 / classes).
    double mean_max_prob(const BatchView &b) {
        double p = 0.0;
        check(fan_diag_readout(get(), b.x, b.n, &p, nullptr, nullptr, 0));
        return p;
    }
    fan_net *get() const noexcept { return net_.get(); }

private:
    fan_status check(fan_status st) const { return detail::check(st, fan_net_errmsg(get())); }

    template <class F>
    struct trampoline {
        F *fn;
        std::exception_ptr error;
        static int call(const fan_progress *p, void *user) {
            auto *self = static_cast<trampoline *>(user);
            try {
                return (*self->fn)(*p) ? 1 : 0;
            } catch (...) {  // never unwind through the C library's frames
                self->error = std::current_exception();
                return 1;
            }
        }
    };

    template <class Loop, class F>
    fan_status run(Loop loop, Optimizer &opt, Iter &it, size_t count, F &&on_step) {
        using Fn = std::remove_reference_t<F>;
        trampoline<Fn> t{&on_step, nullptr};
        fan_status st = loop(get(), opt.get(), it.get(), count, &trampoline<Fn>::call, &t);
        if (t.error) std::rethrow_exception(t.error);
        return check(st);
    }

    std::unique_ptr<fan_net, detail::net_free> net_;
};

inline Optimizer::Optimizer(const Net &net, fan_optimizer_kind kind) {
    fan_optimizer *opt = nullptr;
    detail::check(fan_optimizer_create(&opt, kind, net.get(), nullptr), "fan_optimizer_create");
    opt_.reset(opt);
}

}  // namespace fanoise

#endif  // FANOISE_HPP
