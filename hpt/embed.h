// hpt_run embed / eval: a checkpoint's backbone applied to a dataset.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/tensor.h"
#include "engine/data/dataset.h"
#include "hpt/eval.h"

namespace hpt::pipeline {

struct BackboneRequest {
    std::string checkpoint, data, device = "auto";
    std::string split = "all";  // train | val | test | all (concatenated in that order)
    int64_t image_size = 0;     // 0: the checkpoint's training size, else the data's
    std::vector<double> mean, std;  // empty: the dataset's own training statistics
    data::LoadOptions load;         // format (detected unless forced) and strictness
};

// Pooled features [N, C] (float32, CPU), their labels, and what maps rows and labels back to the
// data: each row's file (image files; empty otherwise) and each label's class name (class folders).
struct Embedding {
    Tensor features, labels;
    std::vector<std::string> names, classes;
};
Embedding embed(const BackboneRequest& r);
struct CheckpointEval {
    EvalResult result;
    EvalSection settings;            // what ran
    bool settings_from_run = false;  // the checkpoint's run's [eval] (else the defaults), then the overrides
    int64_t image_size = 0;          // the side the images were evaluated at
};
// Linear probe and kNN of the checkpoint's backbone on a labeled dataset (hpt_run eval), with the
// [eval] settings of the run that wrote the checkpoint, so that its numbers can be reproduced,
// changed by `overrides` ("eval.<key>=<value>", as --set takes them).
CheckpointEval evaluate_checkpoint(const BackboneRequest& r, const std::vector<std::string>& overrides = {});
// Writes a float32 [N, C] array as .npy (version 1.0, C order), atomically.
void write_npy(const std::string& path, const Tensor& t);

}  // namespace hpt::pipeline
