// Checkpoints of a stage: everything a resumed run needs to continue bit for bit on the CPU.
//
// One safetensors file: encoder_q.* (the query encoder's state, torchvision names under the
// prefix, BN buffers included), encoder_k.*, moco.queue, optim.momentum (the flat SGD buffer),
// and metadata "hpt_manifest": JSON with the stage, step, iterations, the whole run config, the
// parent checkpoint and its SHA-256, the dataset, the seed, the queue pointer and the engine
// version. Written atomically (engine/io/atomic_file.h).
// Next to the final checkpoint a backbone-only file uses bare torchvision names (no fc), for
// users who load it into torchvision (load_state_dict(strict=False)) or into hpt.
#pragma once
#include <cstdint>
#include <string>

#include "engine/io/json.h"
#include "engine/io/safetensors.h"
#include "engine/optim/sgd.h"
#include "ssl/moco.h"

namespace hpt::pipeline {

struct Manifest {
    std::string stage;
    int64_t step = 0;        // steps completed
    int64_t iterations = 0;  // of the stage
    bool final = false;
    int64_t queue_ptr = 0;
    uint64_t seed = 0;
    std::string dataset;
    int64_t images = 0;      // images the stage pretrains on (0: a file written before this was kept)
    double seconds = 0;      // training wall time up to `step`, over every resume
    int64_t image_size = 0;  // the side the stage trained at, its config's 0 resolved (0: written before)
    std::vector<double> mean, std;  // per channel of its pretraining images, in [0, 1] (empty: written before)
    std::string parent, parent_sha256;  // the checkpoint this stage started from, if any
    io::Json config;                    // the run config (pipeline::to_json)
    io::Json results;                   // evaluation results of a final checkpoint
    std::string engine_version = HPT_VERSION;
    io::Json to_json() const;
    static Manifest from_json(const io::Json& j, const std::string& what);
};

void save_checkpoint(const std::string& path, ssl::Moco& moco, const optim::SGD& opt, const Manifest& m);
void save_backbone(const std::string& path, models::ResNet& model, const Manifest& m);

struct Checkpoint {
    io::Safetensors tensors;
    Manifest manifest;
    bool has_manifest = false;  // false for plain torchvision-style files
};
Checkpoint read_checkpoint(const std::string& path);

// The name of the first floating tensor holding inf or NaN, or "". One reduction per tensor: the sum
// is finite only if every element is (f32 overflows only past 3e38).
std::string first_nonfinite(const std::vector<std::pair<std::string, Tensor>>& named);

// Restores query, key, queue, pointer and the optimizer's momentum exactly; a tensor holding inf or
// NaN is an error naming it (a resume from it trained on and evaluated garbage).
void restore(const Checkpoint& c, ssl::Moco& moco, optim::SGD& opt);
// Loads a backbone into `model`: from our checkpoints (encoder_q.*) or from bare torchvision names
// (fc.* ignored). Any other missing, unexpected or misshapen tensor is an error listing them all.
void load_backbone(const Checkpoint& c, models::ResNet& model, const std::string& path);

}  // namespace hpt::pipeline
