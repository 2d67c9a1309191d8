// The configuration of an HPT run: global sections and an ordered list of stages.
//
// One table of fields (config.cpp) drives the TOML reader, the --set overrides, the did-you-mean
// suggestions and the JSON copy stored in every checkpoint, so the four can never disagree.
// Keys are dotted: "run.seed", "model.width", "stage.target.iterations" (or "stage.1.iterations").
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/io/json.h"
#include "ssl/augment_params.h"

namespace hpt::pipeline {

struct RunSection {
    std::string name = "hpt";
    uint64_t seed = 0;
    std::string device = "auto";  // cpu | cuda | cuda:N | auto
    std::string out = "runs/hpt";
    int64_t checkpoint_every = 200;  // steps; 0 = only at the end of each stage
    int64_t log_every = 10;
    bool strict_data = false;  // an unreadable image in a folder or list stops the run (else: skipped, counted)
    int64_t load_size = 0;     // image files (folders, lists) resized on load to this square size; 0 = keep
};

struct ModelSection {
    int64_t depth = 18;
    bool small_stem = true;
    double width = 1.0;
    int64_t in_channels = 0;  // 0: the first stage's data decides (1 gray, 3 RGB)
    int64_t proj_dim = 128;
};

struct MocoSection {
    int64_t queue = 65536;
    double momentum = 0.999;
    double temperature = 0.2;
    int64_t bn_groups = 0;  // 0: the most groups up to batch / 64 that divide the batch (one per rank at least)
};

struct AugmentSection {
    double crop_min_scale = 0.2, crop_max_scale = 1.0;   // RandomResizedCrop area fraction
    double crop_ratio_min = 3.0 / 4.0, crop_ratio_max = 4.0 / 3.0;  // aspect ratio w/h, log-uniform
    int64_t crop_attempts = 10;                         // then the centre-crop fallback
    double blur_radius_sigmas = 3.0;                    // blur kernel radius = ceil(this * sigma)
    double brightness = 0.4, contrast = 0.4, saturation = 0.4, hue = 0.4;
    double jitter_p = 0.8, gray_p = 0.2, blur_p = 0.5, flip_p = 0.5;
    double blur_sigma_min = 0.1, blur_sigma_max = 2.0;
};

struct EvalSection {
    bool linear_probe = true;
    bool knn = true;
    int64_t knn_k = 200;
    double knn_t = 0.1;
    int64_t probe_epochs = 100;
    double probe_lr = 0.1;
    double probe_weight_decay = 0.0;
    int64_t max_train = 20000;  // train images used for probe/kNN features (0 = all)
    int64_t every = 0;          // kNN monitor every this many steps (0 = only at stage ends)
    bool monitor_probe = false; // the linear probe too at those steps (seconds each, on features)
};

// Data parallelism (ranks started by mpirun or srun; see README "Many GPUs or CPU ranks").
struct DistSection {
    std::string backend = "auto";  // auto | none | mpi | nccl
    double timeout_s = 300;        // a collective waiting longer stops the job (0: no limit)
    double bucket_mb = 8;          // gradient all-reduce bucket size
};

struct StageConfig {
    std::string name;
    std::string data;                 // dataset path (any format engine/data reads)
    std::string init = "previous";    // random | previous | <checkpoint.safetensors>
    int64_t iterations = 1000;
    int64_t batch = 256;
    double lr = 0.0;                  // 0: 0.03 * batch / 256
    double weight_decay = 1e-4;
    std::string policy = "full";      // full | no_gray | no_color | crop_blur | crop_only
    int64_t image_size = 0;           // 0: the dataset's own size
    std::string trainable = "all";    // all | bn (HPT-BN)
    std::vector<std::string> eval_data;  // datasets to evaluate on after the stage (default: data)

    double effective_lr() const { return lr > 0 ? lr : 0.03 * double(batch) / 256.0; }
};

struct RunConfig {
    RunSection run;
    ModelSection model;
    MocoSection moco;
    AugmentSection augment;
    EvalSection eval;
    DistSection dist;
    std::vector<StageConfig> stages;
};

// Reads a TOML file ([run], [model], [moco], [augment], [eval], [dist], [[stage]] ...). Unknown keys are
// errors that name the file, the key and the nearest known key.
RunConfig load_config(const std::string& path);
RunConfig parse_config(const std::string& toml_text, const std::string& origin);
// "key=value" from --set; the value is parsed as the key's type.
void apply_override(RunConfig& cfg, const std::string& assignment);
// Consistency checks (a stage without data, a bad policy...), naming the key.
void validate(const RunConfig& cfg);
void validate(const EvalSection& eval);  // also for `hpt_run eval`, whose options bypass a config
// A stage's augmentation at `size`: its policy with the [augment] values (normalisation and
// gray_to_rgb depend on the data and are left to the caller).
ssl::AugmentConfig stage_augment(const RunConfig& cfg, const StageConfig& st, int32_t size);

io::Json to_json(const RunConfig& cfg);
// Every key with its value, defaults included, as TOML that parse_config reads back to cfg.
std::string to_toml(const RunConfig& cfg);
RunConfig from_json(const io::Json& j);
// Every key the config accepts (stage keys as "stage.<name>.<field>"), for --help and suggestions.
std::vector<std::string> known_keys();

}  // namespace hpt::pipeline
