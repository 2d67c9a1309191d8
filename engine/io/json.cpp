#include "engine/io/json.h"

#include <cstdint>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "engine/core/error.h"

namespace hpt::io {

std::string shortest_double(double d) {
    char b[32];
    for (int digits = 15; digits <= 17; ++digits) {
        std::snprintf(b, sizeof b, "%.*g", digits, d);
        if (std::strtod(b, nullptr) == d) break;
    }
    return b;
}

namespace {

struct Parser {
    const std::string& s;
    const std::string& what;
    size_t i = 0;
    int depth = 0;

    [[noreturn]] void fail(const std::string& msg) const {
        HPT_THROW(what, ": invalid JSON at byte ", i, ": ", msg);
    }
    void ws() {
        while (i < s.size() && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t')) ++i;
    }
    void expect(char c) {
        ws();
        if (i >= s.size() || s[i] != c) fail(std::string("expected '") + c + "'");
        ++i;
    }
    std::string str() {
        expect('"');
        std::string o;
        while (true) {
            if (i >= s.size()) fail("unterminated string");
            const char c = s[i++];
            if (c == '"') break;
            if (static_cast<unsigned char>(c) < 0x20) fail("control character in string");
            if (c != '\\') {
                o += c;
                continue;
            }
            if (i >= s.size()) fail("unterminated escape");
            const char e = s[i++];
            switch (e) {
                case '"': o += '"'; break;
                case '\\': o += '\\'; break;
                case '/': o += '/'; break;
                case 'b': o += '\b'; break;
                case 'f': o += '\f'; break;
                case 'n': o += '\n'; break;
                case 'r': o += '\r'; break;
                case 't': o += '\t'; break;
                case 'u': {
                    if (i + 4 > s.size()) fail("short \\u escape");
                    const unsigned cp = unsigned(std::strtoul(s.substr(i, 4).c_str(), nullptr, 16));
                    i += 4;
                    // UTF-8 encode (surrogate pairs are passed through as two 3-byte sequences).
                    if (cp < 0x80) {
                        o += char(cp);
                    } else if (cp < 0x800) {
                        o += char(0xC0 | (cp >> 6));
                        o += char(0x80 | (cp & 0x3F));
                    } else {
                        o += char(0xE0 | (cp >> 12));
                        o += char(0x80 | ((cp >> 6) & 0x3F));
                        o += char(0x80 | (cp & 0x3F));
                    }
                    break;
                }
                default: fail(std::string("bad escape \\") + e);
            }
        }
        return o;
    }
    Json value() {
        ws();
        if (i >= s.size()) fail("unexpected end");
        if (++depth > 64) fail("nested too deeply");
        Json v;
        const char c = s[i];
        if (c == '{') {
            ++i;
            v = Json::object();
            ws();
            if (i < s.size() && s[i] == '}') {
                ++i;
            } else {
                while (true) {
                    ws();
                    const std::string k = str();
                    expect(':');
                    v[k] = value();
                    ws();
                    if (i < s.size() && s[i] == ',') {
                        ++i;
                        continue;
                    }
                    expect('}');
                    break;
                }
            }
        } else if (c == '[') {
            ++i;
            v = Json::array();
            ws();
            if (i < s.size() && s[i] == ']') {
                ++i;
            } else {
                while (true) {
                    v.push_back(value());
                    ws();
                    if (i < s.size() && s[i] == ',') {
                        ++i;
                        continue;
                    }
                    expect(']');
                    break;
                }
            }
        } else if (c == '"') {
            v = Json::string(str());
        } else if (s.compare(i, 4, "true") == 0) {
            i += 4, v = Json::boolean(true);
        } else if (s.compare(i, 5, "false") == 0) {
            i += 5, v = Json::boolean(false);
        } else if (s.compare(i, 4, "null") == 0) {
            i += 4;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            const size_t b = i;
            if (s[i] == '-') ++i;
            bool integral = true;
            while (i < s.size() && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == 'e' || s[i] == 'E' ||
                                    s[i] == '+' || s[i] == '-')) {
                if (s[i] == '.' || s[i] == 'e' || s[i] == 'E') integral = false;
                ++i;
            }
            const std::string t = s.substr(b, i - b);
            char* end = nullptr;
            if (integral && t.size() < 19) {
                const long long x = std::strtoll(t.c_str(), &end, 10);
                if (*end) fail("bad number '" + t + "'");
                v = Json::integer(x);
            } else {
                const double x = std::strtod(t.c_str(), &end);
                if (*end) fail("bad number '" + t + "'");
                v = Json::number(x);
            }
        } else {
            fail(std::string("unexpected character '") + c + "'");
        }
        --depth;
        return v;
    }
};

void dump_string(std::ostringstream& os, const std::string& s) {
    os << '"';
    for (char c : s) {
        if (c == '"' || c == '\\') {
            os << '\\' << c;
        } else if (c == '\n') {
            os << "\\n";
        } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {  // DEL too: then the text is also a TOML string
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            os << buf;
        } else {
            os << c;
        }
    }
    os << '"';
}

void dump_to(std::ostringstream& os, const Json& v) {
    switch (v.type()) {
        case Json::Type::null: os << "null"; break;
        case Json::Type::boolean: os << (v.as_bool() ? "true" : "false"); break;
        case Json::Type::number: {
            const double d = v.as_double();
            if (!std::isfinite(d)) {
                os << "null";
            } else if (d == 0 && std::signbit(d)) {
                os << "-0.0";  // "-0" reads back as the integer 0
            } else if (d == std::floor(d) && std::fabs(d) < 9e15) {
                os << int64_t(d);
            } else {
                os << shortest_double(d);
            }
            break;
        }
        case Json::Type::string: dump_string(os, v.as_string()); break;
        case Json::Type::array: {
            os << '[';
            bool first = true;
            for (const Json& e : v.as_array()) {
                if (!first) os << ',';
                first = false;
                dump_to(os, e);
            }
            os << ']';
            break;
        }
        case Json::Type::object: {
            os << '{';
            bool first = true;
            for (const auto& [k, e] : v.as_object()) {
                if (!first) os << ',';
                first = false;
                dump_string(os, k);
                os << ':';
                dump_to(os, e);
            }
            os << '}';
            break;
        }
    }
}

const char* type_name(Json::Type t) {
    switch (t) {
        case Json::Type::null: return "null";
        case Json::Type::boolean: return "a boolean";
        case Json::Type::number: return "a number";
        case Json::Type::string: return "a string";
        case Json::Type::array: return "an array";
        case Json::Type::object: return "an object";
    }
    return "?";
}

}  // namespace

Json Json::boolean(bool b) {
    Json j;
    j.type_ = Type::boolean;
    j.b_ = b;
    return j;
}
Json Json::number(double d) {
    Json j;
    j.type_ = Type::number;
    j.d_ = d;
    j.integral_ = std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.2e18;
    j.i_ = j.integral_ ? int64_t(d) : 0;
    return j;
}
Json Json::integer(int64_t i) {
    Json j;
    j.type_ = Type::number;
    j.d_ = double(i);
    j.i_ = i;
    j.integral_ = true;
    return j;
}
Json Json::string(std::string s) {
    Json j;
    j.type_ = Type::string;
    j.s_ = std::move(s);
    return j;
}
Json Json::array(std::vector<Json> a) {
    Json j;
    j.type_ = Type::array;
    j.a_ = std::move(a);
    return j;
}
Json Json::object(std::map<std::string, Json> o) {
    Json j;
    j.type_ = Type::object;
    j.o_ = std::move(o);
    return j;
}

Json Json::parse(const std::string& text, const std::string& what) {
    Parser p{text, what};
    Json v = p.value();
    p.ws();
    if (p.i != text.size()) p.fail("trailing characters");
    return v;
}

bool Json::as_bool(const std::string& what) const {
    HPT_CHECK(type_ == Type::boolean, what, " should be a boolean, is ", type_name(type_));
    return b_;
}
double Json::as_double(const std::string& what) const {
    HPT_CHECK(type_ == Type::number, what, " should be a number, is ", type_name(type_));
    return d_;
}
int64_t Json::as_int(const std::string& what) const {
    HPT_CHECK(type_ == Type::number && integral_, what, " should be an integer, is ",
              type_ == Type::number ? "a fraction" : type_name(type_));
    return i_;
}
const std::string& Json::as_string(const std::string& what) const {
    HPT_CHECK(type_ == Type::string, what, " should be a string, is ", type_name(type_));
    return s_;
}
const std::vector<Json>& Json::as_array(const std::string& what) const {
    HPT_CHECK(type_ == Type::array, what, " should be an array, is ", type_name(type_));
    return a_;
}
const std::map<std::string, Json>& Json::as_object(const std::string& what) const {
    HPT_CHECK(type_ == Type::object, what, " should be an object, is ", type_name(type_));
    return o_;
}
bool Json::has(const std::string& key) const { return type_ == Type::object && o_.count(key) > 0; }
const Json& Json::at(const std::string& key) const {
    HPT_CHECK(type_ == Type::object, "looking up '", key, "' in ", type_name(type_));
    auto it = o_.find(key);
    HPT_CHECK(it != o_.end(), "missing key '", key, "'");
    return it->second;
}
Json& Json::operator[](const std::string& key) {
    if (type_ == Type::null) type_ = Type::object;
    HPT_CHECK(type_ == Type::object, "setting '", key, "' on ", type_name(type_));
    return o_[key];
}
void Json::push_back(Json v) {
    if (type_ == Type::null) type_ = Type::array;
    HPT_CHECK(type_ == Type::array, "push_back on ", type_name(type_));
    a_.push_back(std::move(v));
}

std::string Json::dump() const {
    std::ostringstream os;
    dump_to(os, *this);
    return os.str();
}

}  // namespace hpt::io
