// One stage of the HPT schedule: MoCo v2 pretraining on the stage's data from its initialisation,
// with checkpoints, metrics and evaluation at the end.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "engine/dist/comm.h"
#include "hpt/config.h"
#include "hpt/eval.h"

namespace hpt::pipeline {

struct StageEval {
    std::string data;
    EvalResult result;
};

struct StageOutcome {
    std::string name;
    std::string final_checkpoint, backbone;
    int64_t iterations = 0;
    double seconds = 0;
    double final_loss = 0;
    std::vector<StageEval> evals;
    std::string not_evaluated;  // why evals is empty
    bool skipped = false;       // already finished (resume)
};

struct StageRun {
    const RunConfig* cfg;
    size_t index;
    Device device;
    std::string out_dir;      // the run folder
    std::string init_path;    // checkpoint to start from ("" for random init)
    bool resume = false;
    // The ranks of a data-parallel run (never null). Rank 0 alone writes checkpoints and metrics
    // and evaluates; every rank trains on its share of each batch.
    dist::Comm* comm = nullptr;
    // Called on every rank once the stage's resume checks have passed, before it trains or is
    // skipped as finished (the pipeline writes the run's config.json there, so that a resume the
    // checks refuse leaves the run's config as it was).
    std::function<void()> checked;
};

StageOutcome run_stage(const StageRun& r);

// The model input channels of a run: model.in_channels, or the first stage's data channels.
int64_t model_channels(const RunConfig& cfg);
// A stage's data checked against the config: it loads, has at least a batch of images to pretrain
// on, split evenly over the ranks, with channels the model takes, its eval_data can be evaluated
// (where `evaluates`) and an init file is a readable checkpoint. run_pipeline checks every stage
// before the first trains: a bad last stage failed only after the stages before it had run.
void check_stage_data(const RunConfig& cfg, size_t index, int64_t world, bool evaluates);

// Evaluates a backbone on one labeled dataset (features at `image_size`, normalised with that
// dataset's own training statistics).
EvalResult evaluate_backbone(models::ResNet& model, const std::string& data, int64_t image_size, const RunConfig& cfg,
                             Device device);

// Appends one JSON line to <out>/metrics.jsonl.
void append_metric(const std::string& out_dir, const io::Json& line);

}  // namespace hpt::pipeline
