#include "hpt/embed.h"

#include <cstdint>
#include <cstring>
#include <iostream>
#include <memory>

#include "engine/autograd/grad_mode.h"
#include "engine/data/dataset.h"
#include "engine/data/prepare.h"
#include "engine/io/atomic_file.h"
#include "engine/ops/ops.h"
#include "hpt/checkpoint.h"
#include "hpt/eval.h"
#include "hpt/pipeline.h"

namespace hpt::pipeline {

namespace {

// The backbone described by a checkpoint: our manifests carry the model config; bare
// torchvision files are recognised by their tensor shapes.
models::ResNetConfig backbone_config(const Checkpoint& c, const std::string& path) {
    models::ResNetConfig m;
    m.head = models::Head::none;
    if (c.has_manifest) {
        const RunConfig rc = from_json(c.manifest.config);
        m.depth = rc.model.depth;
        m.small_stem = rc.model.small_stem;
        m.width = rc.model.width;
        m.in_channels = rc.model.in_channels;
        if (!m.in_channels) {
            const std::string key = c.tensors.find("encoder_q.conv1.weight") ? "encoder_q.conv1.weight" : "conv1.weight";
            m.in_channels = c.tensors.find(key)->size(1);
        }
        return m;
    }
    const Tensor* w = c.tensors.find("conv1.weight");
    HPT_CHECK(w && w->dim() == 4, path, ": neither an hpt checkpoint nor a torchvision ResNet state dict (no conv1.weight)");
    m.in_channels = w->size(1);
    m.small_stem = w->size(2) == 3;
    m.width = double(w->size(0)) / 64.0;
    m.depth = c.tensors.find("layer1.0.conv3.weight") ? 50 : (c.tensors.find("layer3.5.conv1.weight") ? 34 : 18);
    return m;
}


struct Loaded {
    std::unique_ptr<models::ResNet> model;
    int64_t image_size = 0;
    Device device;
    bool has_run = false;
    RunConfig run;  // of the run that wrote the checkpoint, when it has a manifest
    std::vector<double> mean, std;  // of its pretraining images (empty: a file written before they were kept)
};

Loaded load_model(const BackboneRequest& r) {
    HPT_CHECK(r.image_size >= 0 && r.image_size <= data::kMaxImageSide, "image size ", r.image_size,
              ": must be in [0, ", data::kMaxImageSide, "] (0: the checkpoint's own)");
    const Checkpoint c = read_checkpoint(r.checkpoint);
    const models::ResNetConfig mc = backbone_config(c, r.checkpoint);
    Generator g(0);
    Loaded l;
    l.model = std::make_unique<models::ResNet>(mc, g);
    load_backbone(c, *l.model, r.checkpoint);
    l.device = resolve_device(r.device);
    l.model->flatten(l.device);
    l.image_size = r.image_size;
    if (c.has_manifest) {
        l.has_run = true;
        l.run = from_json(c.manifest.config);
        // The size it trained at: a stage's image_size 0 meant its own data's size, which the
        // manifest records (before it did, 0 fell through to the evaluated data's size).
        if (!l.image_size) l.image_size = c.manifest.image_size;
        l.mean = c.manifest.mean;
        l.std = c.manifest.std;
        if (!l.image_size)
            for (const StageConfig& s : l.run.stages)
                if (s.name == c.manifest.stage) l.image_size = s.image_size;
    }
    return l;
}

// The dataset as the checkpoint's run read it: with the run's seed (it chose the val carve, and
// the evaluation's training subset and probe draws) and its run.load_size unless one is given.
data::Dataset load_as_run(const BackboneRequest& r, const Loaded& l) {
    data::LoadOptions lo = r.load;
    if (l.has_run) {
        lo.seed = l.run.run.seed;
        if (!lo.image_size) lo.image_size = l.run.run.load_size;
    }
    return data::load_dataset(r.data, lo);
}

}  // namespace

CheckpointEval evaluate_checkpoint(const BackboneRequest& r, const std::vector<std::string>& overrides) {
    const auto with_overrides = [&](RunConfig rc) {
        for (const std::string& o : overrides) {
            HPT_CHECK(o.rfind("eval.", 0) == 0, "eval: '", o, "' is not an [eval] setting (eval.<key>=<value>)");
            apply_override(rc, o);
        }
        validate(rc.eval);
        return rc.eval;
    };
    with_overrides(RunConfig());  // bad options fail before any work
    Loaded l = load_model(r);
    CheckpointEval out;
    out.settings_from_run = l.has_run;
    out.settings = with_overrides(l.has_run ? l.run : RunConfig());
    HPT_CHECK(out.settings.linear_probe || out.settings.knn, "eval: eval.linear_probe and eval.knn are both off, so "
              "there is nothing to evaluate (give a --probe-* or --knn-* option, or --set eval.knn=true)");
    out.image_size = l.image_size;
    out.result = evaluate_on(*l.model, load_as_run(r, l), r.data, l.image_size, out.settings,
                             l.has_run ? l.run.run.seed : 0, l.device);
    return out;
}

Embedding embed(const BackboneRequest& r) {
    Loaded l = load_model(r);
    models::ResNet& model = *l.model;
    const models::ResNetConfig& mc = model.config();
    const Device device = l.device;
    const int64_t size = l.image_size;
    data::Dataset ds = load_as_run(r, l);  // its splits are the ones training and eval used
    auto [mean, std] = data::normalization_mean_std(ds.train.size() ? ds.train : ds.test);
    // Given statistics: one value for every channel, or one per channel of the stored images (as
    // the computed ones are) or of the model's input (ImageNet's three for a gray dataset feeding
    // an RGB backbone); spec_for maps them onto the model's channels.
    const int64_t data_c = int64_t(mean.size()), model_c = mc.in_channels ? mc.in_channels : data_c;
    const auto given = [&](const std::vector<double>& v, std::vector<double>& into, const char* option) {
        if (v.empty()) return;
        const int64_t k = int64_t(v.size());
        HPT_CHECK(k == 1 || k == data_c || k == model_c, "embed: ", option, " has ", k, k == 1 ? " value" : " values",
                  ", but ", r.data, " has ", data_c, data_c == 1 ? " channel" : " channels", " and the model takes ",
                  model_c, " (give 1 value, or one per channel)");
        for (const double x : v)  // a mean of 128 (0-255 units) normalised silently wrong
            HPT_CHECK(x >= 0 && x <= 1, "embed: ", option, " ", x, ": statistics are in [0, 1] units (pixel / 255)");
        into = v;
    };
    // By default the statistics the backbone was pretrained with, so that an image's features do
    // not depend on the other images embedded with it (a query folder embedded on its own matched
    // its index folder's classes 62% of the time, 100% with the index's statistics); else, for
    // checkpoints without them, this dataset's own.
    const bool from_run = r.mean.empty() && r.std.empty() && !l.mean.empty();
    given(from_run ? l.mean : r.mean, mean, "--mean");
    given(from_run ? l.std : r.std, std, "--std");
    const auto list = [](const std::vector<double>& v) {
        std::string t;
        for (const double x : v) t += (t.empty() ? "" : " ") + str(x);
        return t;
    };
    std::cerr << "embed: normalised with mean " << list(mean) << " and std " << list(std) << " ("
              << (from_run ? "the checkpoint's pretraining images'"
                           : !r.mean.empty() || !r.std.empty() ? "given" : "this dataset's training split's")
              << "; --mean/--std set them)\n";
    if (mean.size() != std.size()) {  // one of them given for other channels than the other holds
        std::vector<double>& one = mean.size() == 1 ? mean : std;
        HPT_CHECK(one.size() == 1, "embed: --mean has ", mean.size(), " values and --std ", std.size(),
                  ": give both for the same channels");
        one.assign(std::max(mean.size(), std.size()), one[0]);
    }
    const data::InputSpec spec = data::spec_for(mean, std, mc.in_channels, size);
    std::vector<const data::ImageSet*> sets;
    if (r.split == "train" || r.split == "all") sets.push_back(&ds.train);
    if (r.split == "val" || r.split == "all") sets.push_back(&ds.val);
    if (r.split == "test" || r.split == "all") sets.push_back(&ds.test);
    HPT_CHECK(!sets.empty(), "embed: --split must be train, val, test or all, got '", r.split, "'");
    model.eval();
    int64_t total = 0;
    for (const data::ImageSet* s : sets) total += s->size();
    WorkProgress progress("extracting features", total, "images");
    std::vector<Tensor> feats, labels;
    Embedding e;
    for (const data::ImageSet* s : sets) {
        if (!s->size()) continue;
        feats.push_back(features_of(model, *s, all_rows(s->size()), spec, device, &progress));
        labels.push_back(s->labels);
        e.names.insert(e.names.end(), s->names.begin(), s->names.end());
    }
    progress.finish();
    HPT_CHECK(!feats.empty(), "embed: ", r.data, " has no images in split '", r.split, "'");
    e.features = cat(feats, 0);
    e.labels = cat(labels, 0);
    if (int64_t(e.names.size()) != e.features.size(0)) e.names.clear();  // not image files: no names
    e.classes = ds.class_names;
    return e;
}

void write_npy(const std::string& path, const Tensor& t) {
    HPT_CHECK((t.dim() == 1 || t.dim() == 2) && (t.dtype() == DType::f32 || t.dtype() == DType::i64),
              "write_npy: expects a float32 or int64 vector or matrix, got ", dtype_name(t.dtype()), shape_str(t.shape()));
    const std::string shape = t.dim() == 1 ? std::to_string(t.size(0)) + ","
                                           : std::to_string(t.size(0)) + ", " + std::to_string(t.size(1));
    std::string header = std::string("{'descr': '") + (t.dtype() == DType::f32 ? "<f4" : "<i8") +
                         "', 'fortran_order': False, 'shape': (" + shape + "), }";
    // Magic (6) + version (2) + length (2) + header + newline, padded to a multiple of 64.
    const size_t total = (10 + header.size() + 1 + 63) / 64 * 64;
    header.append(total - 10 - header.size() - 1, ' ');
    header += '\n';
    const uint16_t hl = uint16_t(header.size());
    const Tensor c = t.contiguous();
    io::AtomicFile f(path);
    f.write("\x93NUMPY\x01\x00", 8);
    const unsigned char len[2] = {static_cast<unsigned char>(hl & 0xff), static_cast<unsigned char>(hl >> 8)};
    f.write(len, 2);
    f.write(header);
    f.write(c.data_ptr(), size_t(c.numel()) * c.element_size());
    f.commit();
}

}  // namespace hpt::pipeline
