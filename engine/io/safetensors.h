// safetensors (https://github.com/huggingface/safetensors, format only): an 8-byte little-endian
// header length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}},
// then the raw little-endian tensor bytes. Our checkpoints use it with torchvision key names, so a
// torchvision state dict converted by a few lines of Python loads directly.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/io/safetensors_header.h"

#include "engine/core/tensor.h"
#include "engine/nn/module.h"

namespace hpt::io {

struct Safetensors {
    std::vector<std::pair<std::string, Tensor>> tensors;  // in file order; CPU tensors
    std::map<std::string, std::string> metadata;
    const Tensor* find(const std::string& name) const;
};

// Writes atomically (see atomic_file.h). Tensors may live on any device.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});
// Validates everything (header size and JSON, dtypes, shapes, offsets within the file, sizes) and
// throws an hpt::Error naming the file and the problem.
Safetensors load_safetensors(const std::string& path);
Safetensors parse_safetensors(const std::string& bytes, const std::string& what);  // for fuzzing/tests
// The header alone, checked against the file's size, reading no tensor data: a quick look at
// whether a file is a usable checkpoint.
SafetensorsHeader read_safetensors_header(const std::string& path);

// The parameters and buffers of a module, by their dotted names.
std::vector<std::pair<std::string, Tensor>> state_dict(const nn::Module& m);

struct LoadReport {
    std::vector<std::string> loaded, missing, unexpected;
};
// Copies matching tensors into the module. Name or shape mismatches: with `strict`, throws one
// error that lists EVERY offending tensor; otherwise loads what fits and reports the rest.
// `prefix` selects keys starting with it (stripped), e.g. "encoder_q." or "".
LoadReport load_state_dict(nn::Module& m, const Safetensors& st, bool strict = true, const std::string& prefix = "",
                           const std::vector<std::string>& ignore_prefixes = {});

}  // namespace hpt::io
