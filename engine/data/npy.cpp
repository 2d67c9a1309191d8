#include "engine/data/npy.h"

#include <cstdint>
#include <cstring>
#include <map>

#include "engine/core/error.h"
#include "engine/data/io.h"

namespace hpt::data {
namespace {

// A value of the header dict: a string, a bool, or a tuple of non-negative ints.
struct Value {
    enum Kind { string, boolean, tuple } kind = string;
    std::string s;
    bool b = false;
    std::vector<int64_t> ints;
};

class HeaderParser {
public:
    HeaderParser(const std::string& text, const std::string& origin) : t_(text), origin_(origin) {}

    std::map<std::string, Value> dict() {
        std::map<std::string, Value> out;
        expect('{');
        for (;;) {
            if (peek() == '}') break;
            const std::string key = quoted();
            expect(':');
            if (!out.emplace(key, value()).second) fail("duplicate key '" + key + "'");
            if (peek() == ',') {
                ++i_;
                continue;
            }
            if (peek() != '}') fail("expected ',' or '}'");
        }
        ++i_;
        while (i_ < t_.size() && (t_[i_] == ' ' || t_[i_] == '\n' || t_[i_] == '\r' || t_[i_] == '\t' || t_[i_] == '\0'))
            ++i_;
        if (i_ != t_.size()) fail("text after the dict");
        return out;
    }

private:
    [[noreturn]] void fail(const std::string& why) const {
        HPT_THROW(origin_, ": bad .npy header (", why, " at character ", i_, "): ", t_.substr(0, 200));
    }
    char peek() {
        while (i_ < t_.size() && (t_[i_] == ' ' || t_[i_] == '\t' || t_[i_] == '\n' || t_[i_] == '\r')) ++i_;
        if (i_ >= t_.size()) fail("unexpected end");
        return t_[i_];
    }
    void expect(char c) {
        if (peek() != c) fail(std::string("expected '") + c + "'");
        ++i_;
    }
    std::string quoted() {
        const char q = peek();
        if (q != '\'' && q != '"') fail("expected a quoted string");
        const size_t end = t_.find(q, i_ + 1);
        if (end == std::string::npos) fail("unterminated string");
        std::string s = t_.substr(i_ + 1, end - i_ - 1);
        i_ = end + 1;
        return s;
    }
    bool word(const char* w) {
        const size_t n = std::strlen(w);
        if (t_.compare(i_, n, w) != 0) return false;
        i_ += n;
        return true;
    }
    int64_t integer() {
        peek();
        if (i_ >= t_.size() || t_[i_] < '0' || t_[i_] > '9') fail("expected a non-negative integer");
        int64_t v = 0;
        while (i_ < t_.size() && t_[i_] >= '0' && t_[i_] <= '9') {
            if (v > (INT64_MAX - 9) / 10) fail("integer too large");
            v = v * 10 + (t_[i_++] - '0');
        }
        if (i_ < t_.size() && t_[i_] == 'L') ++i_;  // Python 2 longs
        return v;
    }
    Value value() {
        Value v;
        const char c = peek();
        if (c == '\'' || c == '"') {
            v.s = quoted();
        } else if (c == '(') {
            v.kind = Value::tuple;
            ++i_;
            while (peek() != ')') {
                if (v.ints.size() >= 32) fail("more than 32 dimensions");
                v.ints.push_back(integer());
                if (peek() == ',') ++i_;
                else if (peek() != ')') fail("expected ',' or ')' in the shape");
            }
            ++i_;
        } else if (word("True")) {
            v.kind = Value::boolean;
            v.b = true;
        } else if (word("False")) {
            v.kind = Value::boolean;
        } else {
            fail("expected a string, a tuple, True or False");
        }
        return v;
    }

    const std::string& t_;
    const std::string& origin_;
    size_t i_ = 0;
};

}  // namespace

int64_t NpyArray::numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

bool is_npy(const uint8_t* data, size_t size) { return size >= 6 && std::memcmp(data, "\x93NUMPY", 6) == 0; }

NpyArray parse_npy(const uint8_t* data, size_t size, const std::string& origin) {
    if (!is_npy(data, size)) HPT_THROW(origin, ": not a .npy array (no \\x93NUMPY magic)");
    if (size < 10) HPT_THROW(origin, ": truncated .npy header");
    const int major = data[6];
    uint64_t header_len, start;
    if (major == 1) {
        header_len = load_le16(data + 8);
        start = 10;
    } else if (major == 2 || major == 3) {
        if (size < 12) HPT_THROW(origin, ": truncated .npy header");
        header_len = load_le32(data + 8);
        start = 12;
    } else {
        HPT_THROW(origin, ": .npy format version ", major, ".", int(data[7]), " is not supported (1, 2 or 3)");
    }
    if (header_len > size - start)
        HPT_THROW(origin, ": truncated .npy: header length ", header_len, " but only ", size - start, " bytes follow");
    const std::string text(reinterpret_cast<const char*>(data + start), size_t(header_len));
    const std::map<std::string, Value> d = HeaderParser(text, origin).dict();

    auto get = [&](const char* key, Value::Kind kind) -> const Value& {
        auto it = d.find(key);
        if (it == d.end()) HPT_THROW(origin, ": .npy header has no '", key, "': ", text);
        if (it->second.kind != kind) HPT_THROW(origin, ": .npy header '", key, "' has the wrong type: ", text);
        return it->second;
    };
    if (d.size() != 3) HPT_THROW(origin, ": .npy header must hold exactly descr, fortran_order and shape: ", text);
    NpyArray a;
    a.descr = get("descr", Value::string).s;
    const bool fortran = get("fortran_order", Value::boolean).b;
    a.shape = get("shape", Value::tuple).ints;

    const std::string& ds = a.descr;
    if (ds.size() != 3 || (ds[0] != '<' && ds[0] != '>' && ds[0] != '|' && ds[0] != '=') ||
        (ds[1] != 'u' && ds[1] != 'i' && ds[1] != 'b') || (ds[2] != '1' && ds[2] != '2' && ds[2] != '4' && ds[2] != '8') ||
        (ds[1] == 'b' && ds[2] != '1'))
        HPT_THROW(origin, ": .npy dtype '", ds, "' is not supported (integer or bool only, e.g. '|u1', '<i8')");
    a.kind = ds[1];
    a.item_size = ds[2] - '0';
    a.big_endian = ds[0] == '>';

    uint64_t count = 1;
    int non_unit_dims = 0;
    for (int64_t dim : a.shape) {
        non_unit_dims += dim > 1;
        if (!checked_mul(count, uint64_t(dim), kMaxArrayBytes, &count))
            HPT_THROW(origin, ": .npy shape ", shape_str(a.shape), " is too large");
    }
    // Fortran order only changes the layout when two or more dimensions exceed 1.
    if (fortran && non_unit_dims > 1)
        HPT_THROW(origin, ": .npy arrays in Fortran order are not supported (shape ", shape_str(a.shape), ")");
    uint64_t nbytes;
    if (!checked_mul(count, uint64_t(a.item_size), kMaxArrayBytes, &nbytes))
        HPT_THROW(origin, ": .npy shape ", shape_str(a.shape), " is too large");
    const uint64_t have = size - start - header_len;
    if (have != nbytes)
        HPT_THROW(origin, ": .npy data is ", have, " bytes but shape ", shape_str(a.shape), " of '", ds, "' needs ",
                  nbytes, have < nbytes ? " (truncated)" : " (extra data)");
    const uint8_t* p = data + start + header_len;
    a.data.assign(p, p + nbytes);
    return a;
}

std::vector<int64_t> npy_to_int64(const NpyArray& a, const std::string& origin) {
    const size_t n = a.data.size() / size_t(a.item_size);
    std::vector<int64_t> out(n);
    for (size_t i = 0; i < n; ++i) {
        const uint8_t* p = a.data.data() + i * size_t(a.item_size);
        uint64_t u = 0;
        for (int b = 0; b < a.item_size; ++b) {
            const int shift = 8 * (a.big_endian ? a.item_size - 1 - b : b);
            u |= uint64_t(p[b]) << shift;
        }
        if (a.kind == 'i' && a.item_size < 8 && (u >> (8 * a.item_size - 1)) & 1)
            u |= ~uint64_t(0) << (8 * a.item_size);  // sign-extend
        if (a.kind == 'u' && a.item_size == 8 && u > uint64_t(INT64_MAX))
            HPT_THROW(origin, ": value ", u, " at index ", i, " does not fit in int64");
        out[i] = int64_t(u);
    }
    return out;
}

}  // namespace hpt::data
