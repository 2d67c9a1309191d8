#include "hpt/checkpoint.h"

#include <cstdint>
#include <cmath>

#include "engine/autograd/grad_mode.h"
#include "engine/ops/ops.h"

namespace hpt::pipeline {

namespace {
std::vector<std::pair<std::string, Tensor>> prefixed(const std::string& prefix, const nn::Module& m) {
    std::vector<std::pair<std::string, Tensor>> out;
    for (auto& [n, t] : m.named_state()) out.emplace_back(prefix + n, t);
    return out;
}
}  // namespace

io::Json Manifest::to_json() const {
    io::Json j = io::Json::object();
    j["format"] = io::Json::string("hpt-checkpoint-1");
    j["stage"] = io::Json::string(stage);
    j["step"] = io::Json::integer(step);
    j["iterations"] = io::Json::integer(iterations);
    j["final"] = io::Json::boolean(final);
    j["queue_ptr"] = io::Json::integer(queue_ptr);
    j["seed"] = io::Json::integer(int64_t(seed));
    j["dataset"] = io::Json::string(dataset);
    j["images"] = io::Json::integer(images);
    j["seconds"] = io::Json::number(seconds);
    j["image_size"] = io::Json::integer(image_size);
    const auto list = [](const std::vector<double>& v) {
        io::Json a = io::Json::array();
        for (const double x : v) a.push_back(io::Json::number(x));
        return a;
    };
    j["mean"] = list(mean);
    j["std"] = list(std);
    j["parent"] = io::Json::string(parent);
    j["parent_sha256"] = io::Json::string(parent_sha256);
    j["config"] = config;
    j["results"] = results;
    j["engine_version"] = io::Json::string(engine_version);
    return j;
}

Manifest Manifest::from_json(const io::Json& j, const std::string& what) {
    Manifest m;
    try {
        m.stage = j.at("stage").as_string();
        m.step = j.at("step").as_int();
        m.iterations = j.at("iterations").as_int();
        m.final = j.at("final").as_bool();
        m.queue_ptr = j.at("queue_ptr").as_int();
        m.seed = uint64_t(j.at("seed").as_int());
        m.dataset = j.at("dataset").as_string();
        if (j.has("images")) m.images = j.at("images").as_int();  // absent in files of earlier versions
        if (j.has("seconds")) m.seconds = j.at("seconds").as_double("seconds");
        if (j.has("image_size")) m.image_size = j.at("image_size").as_int();
        for (const auto& [key, into] : {std::pair<const char*, std::vector<double>*>{"mean", &m.mean}, {"std", &m.std}})
            if (j.has(key))
                for (const io::Json& x : j.at(key).as_array()) into->push_back(x.as_double(key));
        m.parent = j.at("parent").as_string();
        m.parent_sha256 = j.at("parent_sha256").as_string();
        m.config = j.at("config");
        m.results = j.has("results") ? j.at("results") : io::Json();
        m.engine_version = j.at("engine_version").as_string();
    } catch (const Error& e) {
        HPT_THROW(what, ": bad checkpoint manifest: ", e.what());
    }
    // Before anything acts on them: a step of -3 had a resume delete the stage's metrics lines
    // before the loader refused it, and seconds of -100 reached summary.json.
    const auto in_range = [&](bool ok, const char* field, const auto& v, const char* want) {
        HPT_CHECK(ok, what, ": bad checkpoint manifest: ", field, " = ", v, " (", want, ")");
    };
    in_range(m.iterations >= 0, "iterations", m.iterations, "must be >= 0");
    in_range(m.step >= 0 && m.step <= m.iterations, "step", m.step, "must be in [0, iterations]");
    in_range(m.queue_ptr >= 0, "queue_ptr", m.queue_ptr, "must be >= 0");
    in_range(m.images >= 0, "images", m.images, "must be >= 0");
    in_range(m.image_size >= 0, "image_size", m.image_size, "must be >= 0");
    in_range(std::isfinite(m.seconds) && m.seconds >= 0, "seconds", m.seconds, "must be finite and >= 0");
    in_range(m.mean.size() == m.std.size() && m.mean.size() <= 3, "mean/std values", m.mean.size(), "one per channel");
    for (size_t c = 0; c < m.mean.size(); ++c)
        in_range(m.mean[c] >= 0 && m.mean[c] <= 1 && m.std[c] > 0 && m.std[c] <= 1, "mean/std of channel", c, "in [0, 1]");
    return m;
}

void save_checkpoint(const std::string& path, ssl::Moco& moco, const optim::SGD& opt, const Manifest& m) {
    auto tensors = prefixed("encoder_q.", moco.query());
    for (auto& p : prefixed("encoder_k.", moco.key())) tensors.push_back(p);
    tensors.emplace_back("moco.queue", moco.queue());
    tensors.emplace_back("optim.momentum", opt.momentum_buffer());
    io::save_safetensors(path, tensors, {{"hpt_manifest", m.to_json().dump()}});
}

void save_backbone(const std::string& path, models::ResNet& model, const Manifest& m) {
    std::vector<std::pair<std::string, Tensor>> tensors;
    for (auto& [n, t] : model.named_state())
        if (n.rfind("fc.", 0) != 0) tensors.emplace_back(n, t);
    io::save_safetensors(path, tensors, {{"hpt_manifest", m.to_json().dump()}});
}

Checkpoint read_checkpoint(const std::string& path) {
    Checkpoint c;
    c.tensors = io::load_safetensors(path);
    auto it = c.tensors.metadata.find("hpt_manifest");
    if (it != c.tensors.metadata.end()) {
        c.manifest = Manifest::from_json(io::Json::parse(it->second, path + " manifest"), path);
        c.has_manifest = true;
    }
    return c;
}

std::string first_nonfinite(const std::vector<std::pair<std::string, Tensor>>& named) {
    NoGradGuard ng;
    for (const auto& [name, t] : named)
        if (is_floating(t.dtype()) && t.numel() > 0 && !std::isfinite(sum(t.reshape({-1})).item<double>())) return name;
    return "";
}

void restore(const Checkpoint& c, ssl::Moco& moco, optim::SGD& opt) {
    io::load_state_dict(moco.query(), c.tensors, true, "encoder_q.", {});
    io::load_state_dict(moco.key(), c.tensors, true, "encoder_k.", {});
    NoGradGuard ng;
    const Tensor* q = c.tensors.find("moco.queue");
    const Tensor* mom = c.tensors.find("optim.momentum");
    HPT_CHECK(q && q->shape() == moco.queue().shape(), "checkpoint: moco.queue missing or of the wrong shape (",
              q ? shape_str(q->shape()) : "absent", " vs ", shape_str(moco.queue().shape()), ")");
    HPT_CHECK(mom && mom->shape() == opt.momentum_buffer().shape(), "checkpoint: optim.momentum missing or of the wrong shape");
    moco.queue().copy_(*q);
    opt.momentum_buffer().copy_(*mom);
    moco.set_queue_ptr(c.manifest.queue_ptr);
    std::vector<std::pair<std::string, Tensor>> all;
    for (const auto& [name, t] : moco.query().named_state()) all.emplace_back("encoder_q." + name, t);
    for (const auto& [name, t] : moco.key().named_state()) all.emplace_back("encoder_k." + name, t);
    all.emplace_back("moco.queue", moco.queue());
    all.emplace_back("optim.momentum", opt.momentum_buffer());
    const std::string bad = first_nonfinite(all);
    HPT_CHECK(bad.empty(), "checkpoint: tensor '", bad, "' holds inf or NaN; it cannot be resumed from");
}

namespace {

// The model settings a misfit checkpoint points to: a list of 100 misshapen tensors did not say
// that model.width (or in_channels, small_stem, depth) differed.
std::string misfit_hint(const io::Safetensors& file, const std::string& prefix, const models::ResNet& model) {
    const Tensor* w = file.find(prefix + "conv1.weight");
    const Tensor* mw = nullptr;
    const auto sd = io::state_dict(model);
    for (const auto& [name, t] : sd)
        if (name == "conv1.weight") mw = &t;
    std::string hint;
    if (w && mw && w->dim() == 4) {
        if (w->size(1) != mw->size(1))
            hint += str(" The checkpoint takes ", w->size(1), " input channels, the model ", mw->size(1),
                        ": set model.in_channels = ", w->size(1), ".");
        if (w->size(0) != mw->size(0))
            hint += str(" Its stem has ", w->size(0), " filters, the model's ", mw->size(0), ": set model.width = ",
                        double(w->size(0)) / 64.0, ".");
        if (w->size(2) != mw->size(2))
            hint += str(" Its stem is a ", w->size(2), "x", w->size(3), " convolution: set model.small_stem = ",
                        w->size(2) == 3 ? "true." : "false.");
    }
    const int depth = file.find(prefix + "layer1.0.conv3.weight") ? 50 : file.find(prefix + "layer3.5.conv1.weight") ? 34 : 18;
    if (w && depth != model.config().depth) hint += str(" It is a ResNet-", depth, ": set model.depth = ", depth, ".");
    return hint;
}

}  // namespace

void load_backbone(const Checkpoint& c, models::ResNet& model, const std::string& path) {
    const bool ours = c.tensors.find("encoder_q.conv1.weight") != nullptr;
    try {
        io::load_state_dict(model, c.tensors, true, ours ? "encoder_q." : "", {"fc."});
    } catch (const Error& e) {
        HPT_THROW(path, ": ", e.what(), misfit_hint(c.tensors, ours ? "encoder_q." : "", model));
    }
    // A weight of NaN gave all-NaN features and accuracies that looked like chance, without a word.
    const std::string bad = first_nonfinite(model.named_state());
    HPT_CHECK(bad.empty(), path, ": tensor '", bad, "' holds inf or NaN");
}

}  // namespace hpt::pipeline
