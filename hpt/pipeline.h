// Runs the stages of a config in order, each initialised as its `init` says (random, the previous
// stage's final checkpoint, or a file), and writes the run folder:
//   config.json (the resolved config), metrics.jsonl (one JSON line per logged step, evaluation,
//   resume), <stage>/final.safetensors + backbone.safetensors (+ last.safetensors while running),
//   summary.txt and summary.json.
#pragma once
#include <string>
#include <vector>

#include "hpt/config.h"
#include "hpt/stage.h"

namespace hpt::pipeline {

struct RunResult {
    std::string out_dir;
    std::string device;
    int rank = 0, world = 1;  // only rank 0's stages carry evaluations
    std::vector<StageOutcome> stages;
};

// "auto" picks the first GPU when the build has CUDA and one is visible, else the CPU.
Device resolve_device(const std::string& spec);

// Started by mpirun/srun as several ranks, the run is data-parallel (cfg.dist): each rank trains
// on its share of every batch on its own device, rank 0 writes the run folder.
RunResult run_pipeline(const RunConfig& cfg, bool resume);

// " key: old -> new;" for each value that differs between two configs as to_json writes them
// (stages by index: "stage.0.iterations").
std::string config_changes(const io::Json& before, const io::Json& after);

// A table with one row per (stage, evaluated dataset).
std::string summary_table(const RunResult& r);

}  // namespace hpt::pipeline
