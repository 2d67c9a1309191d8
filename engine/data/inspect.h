// What `hpt_run data inspect PATH` prints: a human-readable report of a dataset as the loader
// reads it.
#pragma once
#include <string>

#include "engine/data/dataset.h"

namespace hpt::data {

// Detected format, split sizes (and whether val was carved out of train), image shape, classes
// with their counts per split, the training split's per-channel mean/std, skipped files.
// Throws hpt::Error when the dataset cannot be read.
std::string inspect_report(const std::string& path, const LoadOptions& opt = {});

}  // namespace hpt::data
