#include "engine/io/safetensors.h"

#include <cstdint>
#include <algorithm>
#include <cstring>
#include <fstream>

#include "engine/autograd/grad_mode.h"
#include "engine/io/atomic_file.h"
#include "engine/io/json.h"
#include "engine/io/safetensors_header.h"

namespace hpt::io {

namespace {

const char* st_dtype(DType t) {
    switch (t) {
        case DType::f32: return "F32";
        case DType::f64: return "F64";
        case DType::bf16: return "BF16";
        case DType::u8: return "U8";
        case DType::i32: return "I32";
        case DType::i64: return "I64";
    }
    return "?";
}

}  // namespace

const Tensor* Safetensors::find(const std::string& name) const {
    for (auto& [n, t] : tensors)
        if (n == name) return &t;
    return nullptr;
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
    NoGradGuard ng;
    Json header = Json::object();
    std::vector<Tensor> host;
    uint64_t off = 0;
    for (const auto& [name, t] : tensors) {
        HPT_CHECK(t.defined(), "save_safetensors ", path, ": tensor '", name, "' is undefined");
        HPT_CHECK(name != "__metadata__" && !header.has(name), "save_safetensors ", path, ": bad or repeated name '",
                  name, "'");
        const Tensor h = t.to(Device::cpu()).contiguous();
        const uint64_t n = uint64_t(h.numel()) * h.element_size();
        Json shape = Json::array();
        for (int64_t d : h.shape()) shape.push_back(Json::integer(d));
        Json e = Json::object();
        e["dtype"] = Json::string(st_dtype(h.dtype()));
        e["shape"] = shape;
        e["data_offsets"] = Json::array({Json::integer(int64_t(off)), Json::integer(int64_t(off + n))});
        header[name] = e;
        host.push_back(h);
        off += n;
    }
    if (!metadata.empty()) {
        Json m = Json::object();
        for (auto& [k, v] : metadata) m[k] = Json::string(v);
        header["__metadata__"] = m;
    }
    std::string hs = header.dump();
    hs.append((8 - hs.size() % 8) % 8, ' ');  // keeps the data 8-byte aligned, as the format suggests
    const uint64_t hl = hs.size();
    unsigned char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(hl >> (8 * i));
    AtomicFile f(path);
    f.write(len, 8);
    f.write(hs);
    for (const Tensor& h : host) f.write(h.data_ptr(), size_t(h.numel()) * h.element_size());
    f.commit();
}

Safetensors parse_safetensors(const std::string& bytes, const std::string& what) {
    const SafetensorsHeader h =
        parse_safetensors_header(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), what);
    Safetensors st;
    st.metadata = h.metadata;
    for (const SafetensorsEntry& e : h.entries) {
        Tensor t = empty(e.shape, e.dtype);
        if (e.end > e.begin) std::memcpy(t.data_ptr(), bytes.data() + h.data_offset + e.begin, size_t(e.end - e.begin));
        st.tensors.emplace_back(e.name, t);
    }
    return st;
}

Safetensors load_safetensors(const std::string& path) { return parse_safetensors(read_file(path), path); }

SafetensorsHeader read_safetensors_header(const std::string& path) {
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    HPT_CHECK(in, "cannot open ", path);
    const size_t size = size_t(in.tellg());
    std::string head(std::min<size_t>(size, 8), '\0');
    in.seekg(0);
    in.read(head.data(), std::streamsize(head.size()));
    if (head.size() == 8) {  // the header's length, little-endian; parse_safetensors_header checks it
        uint64_t hl = 0;
        for (int i = 7; i >= 0; --i) hl = hl << 8 | uint8_t(head[size_t(i)]);
        if (hl <= size - 8 && hl <= kMaxSafetensorsHeader) {
            head.resize(8 + size_t(hl));
            in.read(head.data() + 8, std::streamsize(hl));
        }
    }
    HPT_CHECK(in || in.eof(), "cannot read ", path);
    return parse_safetensors_header(reinterpret_cast<const uint8_t*>(head.data()), size, path);
}

std::vector<std::pair<std::string, Tensor>> state_dict(const nn::Module& m) { return m.named_state(); }

LoadReport load_state_dict(nn::Module& m, const Safetensors& st, bool strict, const std::string& prefix,
                           const std::vector<std::string>& ignore_prefixes) {
    NoGradGuard ng;
    LoadReport r;
    std::vector<std::string> problems;
    std::map<std::string, const Tensor*> file;
    for (auto& [n, t] : st.tensors) {
        if (n.compare(0, prefix.size(), prefix) != 0) continue;
        const std::string k = n.substr(prefix.size());
        bool ignored = false;
        for (const std::string& ip : ignore_prefixes) ignored = ignored || k.compare(0, ip.size(), ip) == 0;
        if (!ignored) file[k] = &t;
    }
    for (auto& [name, t] : state_dict(m)) {
        bool ignored = false;
        for (const std::string& ip : ignore_prefixes) ignored = ignored || name.compare(0, ip.size(), ip) == 0;
        if (ignored) continue;
        auto it = file.find(name);
        if (it == file.end()) {
            r.missing.push_back(name);
            problems.push_back("missing '" + prefix + name + "' (model has " + dtype_name(t.dtype()) +
                               shape_str(t.shape()) + ")");
            continue;
        }
        const Tensor& src = *it->second;
        if (src.shape() != t.shape()) {
            problems.push_back("'" + prefix + name + "': file has " + shape_str(src.shape()) + ", model has " +
                               shape_str(t.shape()));
            r.unexpected.push_back(name);
        } else {
            t.copy_(src);
            r.loaded.push_back(name);
        }
        file.erase(it);
    }
    for (auto& [k, t] : file) {
        r.unexpected.push_back(k);
        problems.push_back("unexpected '" + prefix + k + "' " + shape_str(t->shape()) + " (not in the model)");
    }
    if (strict && !problems.empty()) {
        std::string msg = "checkpoint does not fit the model (" + std::to_string(problems.size()) + " tensors):";
        for (const std::string& p : problems) msg += "\n  " + p;
        HPT_THROW(msg);
    }
    return r;
}

}  // namespace hpt::io
