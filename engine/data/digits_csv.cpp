#include "engine/data/digits_csv.h"

#include <cstdint>
#include <cmath>
#include <cstdlib>

#include "engine/core/error.h"
#include "engine/data/gzip.h"

namespace hpt::data {
namespace {

constexpr int kPixels = 64;
// The real file is 0.3 MB of text; this only stops a gzip bomb.
constexpr uint64_t kMaxText = uint64_t(1) << 28;

std::string content(const uint8_t* data, size_t size, const std::string& origin, uint64_t limit) {
    if (is_gzip(data, size)) {
        const std::vector<uint8_t> v = gunzip(data, size, origin, limit);
        return std::string(v.begin(), v.end());
    }
    if (size > limit) HPT_THROW(origin, ": ", size, " bytes is too large for a digits CSV");
    return std::string(reinterpret_cast<const char*>(data), size);
}

// One field as a number with an integral value ("5", "5.0"); false when it is anything else.
bool parse_field(const char* b, const char* e, int64_t* out) {
    while (b < e && (*b == ' ' || *b == '\t')) ++b;
    while (e > b && (e[-1] == ' ' || e[-1] == '\t')) --e;
    if (b == e) return false;
    int64_t v = 0;
    const char* p = b;
    if (p < e && *p == '+') ++p;
    if (p == e || *p < '0' || *p > '9') return false;
    while (p < e && *p >= '0' && *p <= '9') {
        if (v > 1000000000) return false;
        v = v * 10 + (*p++ - '0');
    }
    if (p < e && *p == '.') {
        ++p;
        while (p < e && *p == '0') ++p;
    }
    if (p != e) return false;
    *out = v;
    return true;
}

// Splits a line into its fields; false on a non-numeric field.
bool parse_line(const std::string& text, size_t b, size_t e, std::vector<int64_t>& fields) {
    fields.clear();
    while (true) {
        size_t comma = text.find(',', b);
        if (comma == std::string::npos || comma > e) comma = e;
        int64_t v;
        if (!parse_field(text.data() + b, text.data() + comma, &v)) return false;
        fields.push_back(v);
        if (comma == e || fields.size() > kPixels + 1) return true;
        b = comma + 1;
    }
}

}  // namespace

bool looks_like_digits_csv(const uint8_t* data, size_t size) {
    try {
        std::string head;
        if (is_gzip(data, size)) {
            GzipReader gz(data, size, "");
            head.resize(4096);
            head.resize(gz.read(reinterpret_cast<uint8_t*>(&head[0]), head.size()));
        } else {
            head.assign(reinterpret_cast<const char*>(data), std::min<size_t>(size, 4096));
        }
        size_t e = head.find('\n');
        if (e == std::string::npos) e = head.size();
        if (e > 0 && head[e - 1] == '\r') --e;
        std::vector<int64_t> f;
        return parse_line(head, 0, e, f) && f.size() == kPixels + 1;
    } catch (const Error&) {
        return false;
    }
}

DigitsCsv parse_digits_csv(const uint8_t* data, size_t size, const std::string& origin) {
    const std::string text = content(data, size, origin, kMaxText);
    DigitsCsv out;
    std::vector<int64_t> f;
    size_t line_no = 0;
    for (size_t b = 0; b < text.size();) {
        size_t e = text.find('\n', b);
        if (e == std::string::npos) e = text.size();
        const size_t next = e + 1;
        ++line_no;
        if (e > b && text[e - 1] == '\r') --e;
        if (e > b) {
            if (!parse_line(text, b, e, f))
                HPT_THROW(origin, ":", line_no, ": not a line of comma-separated whole numbers");
            if (f.size() != kPixels + 1)
                HPT_THROW(origin, ":", line_no, ": ", f.size() > kPixels + 1 ? "more than" : "only", " ",
                          f.size() > kPixels + 1 ? kPixels + 1 : f.size(), " fields (expected 64 pixels and a label)");
            for (int i = 0; i < kPixels; ++i) {
                if (f[i] > 16)
                    HPT_THROW(origin, ":", line_no, ": pixel ", i, " is ", f[i], ", outside 0..16");
                out.pixels.push_back(uint8_t((f[i] * 255 + 8) / 16));
            }
            if (f[kPixels] > INT32_MAX) HPT_THROW(origin, ":", line_no, ": label ", f[kPixels], " is too large");
            out.labels.push_back(f[kPixels]);
            ++out.count;
        }
        b = next;
    }
    if (out.count == 0) HPT_THROW(origin, ": no rows in the digits CSV");
    return out;
}

}  // namespace hpt::data
