#include "engine/io/safetensors.h"

#include <cstdint>
#include <algorithm>
#include <cstring>

#include "engine/autograd/grad_mode.h"
#include "engine/io/atomic_file.h"
#include "engine/io/json.h"

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

bool parse_dtype(const std::string& s, DType& t) {
    static const std::pair<const char*, DType> table[] = {{"F32", DType::f32}, {"F64", DType::f64},
                                                          {"BF16", DType::bf16}, {"U8", DType::u8},
                                                          {"I32", DType::i32}, {"I64", DType::i64}};
    for (auto& [n, d] : table) {
        if (s == n) {
            t = d;
            return true;
        }
    }
    return false;
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
    HPT_CHECK(bytes.size() >= 8, what, ": not a safetensors file (", bytes.size(), " bytes, shorter than its header)");
    uint64_t hl = 0;
    for (int i = 0; i < 8; ++i) hl |= uint64_t(static_cast<unsigned char>(bytes[size_t(i)])) << (8 * i);
    HPT_CHECK(hl <= bytes.size() - 8 && hl <= (100u << 20), what, ": header length ", hl,
              " does not fit the file's ", bytes.size(), " bytes (truncated or not safetensors)");
    const Json header = Json::parse(bytes.substr(8, hl), what + " (header)");
    HPT_CHECK(header.is_object(), what, ": header is not a JSON object");
    const uint64_t data_size = bytes.size() - 8 - hl;
    const char* data = bytes.data() + 8 + hl;
    Safetensors st;
    // File order = order of data offsets.
    std::vector<std::pair<uint64_t, std::string>> order;
    for (const auto& [name, e] : header.as_object()) {
        if (name == "__metadata__") {
            for (const auto& [k, v] : e.as_object(what + " __metadata__"))
                st.metadata[k] = v.as_string(what + " __metadata__." + k);
            continue;
        }
        const std::string w = what + " tensor '" + name + "'";
        DType dt;
        HPT_CHECK(parse_dtype(e.at("dtype").as_string(w + " dtype"), dt), w, ": unsupported dtype '",
                  e.at("dtype").as_string(), "'");
        Shape shape;
        uint64_t numel = 1;
        for (const Json& d : e.at("shape").as_array(w + " shape")) {
            const int64_t v = d.as_int(w + " shape entry");
            HPT_CHECK(v >= 0 && v < (int64_t(1) << 40), w, ": bad dimension ", v);
            shape.push_back(v);
            numel *= uint64_t(v);
            HPT_CHECK(numel < (uint64_t(1) << 40), w, ": too many elements");
        }
        const auto& offs = e.at("data_offsets").as_array(w + " data_offsets");
        HPT_CHECK(offs.size() == 2, w, ": data_offsets must have two entries");
        const int64_t b = offs[0].as_int(w + " offset"), en = offs[1].as_int(w + " offset");
        HPT_CHECK(b >= 0 && en >= b && uint64_t(en) <= data_size, w, ": data [", b, ", ", en,
                  ") lies outside the file's ", data_size, " data bytes (truncated?)");
        HPT_CHECK(uint64_t(en - b) == numel * dtype_size(dt), w, ": ", en - b, " bytes for ", dtype_name(dt),
                  shape_str(shape), " which needs ", numel * dtype_size(dt));
        Tensor t = empty(shape, dt);
        if (en > b) std::memcpy(t.data_ptr(), data + b, size_t(en - b));
        order.emplace_back(uint64_t(b), name);
        st.tensors.emplace_back(name, t);
    }
    std::vector<std::pair<std::string, Tensor>> sorted;
    std::sort(order.begin(), order.end());
    for (auto& [b, n] : order)
        for (auto& p : st.tensors)
            if (p.first == n) sorted.push_back(p);
    st.tensors.swap(sorted);
    return st;
}

Safetensors load_safetensors(const std::string& path) { return parse_safetensors(read_file(path), path); }

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
