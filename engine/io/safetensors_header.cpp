#include "engine/io/safetensors_header.h"

#include <algorithm>

#include "engine/core/error.h"
#include "engine/io/json.h"

namespace hpt::io {

namespace {

bool parse_dtype(const std::string& s, DType& t) {
    static const std::pair<const char*, DType> table[] = {{"F32", DType::f32},   {"F64", DType::f64},
                                                          {"BF16", DType::bf16}, {"U8", DType::u8},
                                                          {"I32", DType::i32},   {"I64", DType::i64}};
    for (auto& [n, d] : table) {
        if (s == n) {
            t = d;
            return true;
        }
    }
    return false;
}

}  // namespace

SafetensorsHeader parse_safetensors_header(const uint8_t* bytes, size_t size, const std::string& what) {
    HPT_CHECK(size >= 8, what, ": not a safetensors file (", size, " bytes, shorter than its header)");
    uint64_t hl = 0;
    for (int i = 0; i < 8; ++i) hl |= uint64_t(bytes[i]) << (8 * i);
    HPT_CHECK(hl <= size - 8 && hl <= kMaxSafetensorsHeader, what, ": header length ", hl, " does not fit the file's ",
              size, " bytes (truncated or not safetensors)");
    const Json header =
        Json::parse(std::string(reinterpret_cast<const char*>(bytes) + 8, size_t(hl)), what + " (header)");
    HPT_CHECK(header.is_object(), what, ": header is not a JSON object");
    SafetensorsHeader h;
    h.data_offset = 8 + hl;
    const uint64_t data_size = size - h.data_offset;
    // Every element count stays below 2^40, checked before each multiplication so that it cannot wrap.
    constexpr uint64_t kMaxElements = uint64_t(1) << 40;
    for (const auto& [name, e] : header.as_object()) {
        if (name == "__metadata__") {
            for (const auto& [k, v] : e.as_object(what + " __metadata__"))
                h.metadata[k] = v.as_string(what + " __metadata__." + k);
            continue;
        }
        const std::string w = what + " tensor '" + name + "'";
        SafetensorsEntry en;
        en.name = name;
        HPT_CHECK(parse_dtype(e.at("dtype").as_string(w + " dtype"), en.dtype), w,
                  ": unsupported dtype '", e.at("dtype").as_string(), "'");
        uint64_t numel = 1;
        for (const Json& d : e.at("shape").as_array(w + " shape")) {
            const int64_t v = d.as_int(w + " shape entry");
            HPT_CHECK(v >= 0 && uint64_t(v) < kMaxElements, w, ": bad dimension ", v);
            HPT_CHECK(v == 0 || numel < kMaxElements / uint64_t(v), w, ": too many elements");
            en.shape.push_back(v);
            numel *= uint64_t(v);
        }
        const auto& offs = e.at("data_offsets").as_array(w + " data_offsets");
        HPT_CHECK(offs.size() == 2, w, ": data_offsets must have two entries");
        const int64_t b = offs[0].as_int(w + " offset"), end = offs[1].as_int(w + " offset");
        HPT_CHECK(b >= 0 && end >= b && uint64_t(end) <= data_size, w, ": data [", b, ", ", end,
                  ") lies outside the file's ", data_size, " data bytes (truncated?)");
        HPT_CHECK(uint64_t(end - b) == numel * dtype_size(en.dtype), w, ": ", end - b, " bytes for ",
                  dtype_name(en.dtype), shape_str(en.shape), " which needs ", numel * dtype_size(en.dtype));
        en.begin = uint64_t(b);
        en.end = uint64_t(end);
        h.entries.push_back(std::move(en));
    }
    std::sort(h.entries.begin(), h.entries.end(), [](const SafetensorsEntry& a, const SafetensorsEntry& b) {
        return a.begin != b.begin ? a.begin < b.begin : a.name < b.name;  // empty tensors share offsets
    });
    return h;
}

}  // namespace hpt::io
