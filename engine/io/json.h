// A small JSON reader and writer for our own formats: safetensors headers, checkpoint manifests,
// metrics lines. Numbers are kept as double plus, when integral, the exact int64.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace hpt::io {

// The shortest "%g" text (15 to 17 digits) that reads back as exactly d: 0.9, not 0.90000000000000002.
std::string shortest_double(double d);

class Json {
public:
    enum class Type { null, boolean, number, string, array, object };

    Json() = default;
    static Json boolean(bool b);
    static Json number(double d);
    static Json integer(int64_t i);
    static Json string(std::string s);
    static Json array(std::vector<Json> a = {});
    static Json object(std::map<std::string, Json> o = {});

    // Throws hpt::Error naming `what` (a file name, usually) and the byte offset on bad input.
    static Json parse(const std::string& text, const std::string& what = "JSON");

    Type type() const { return type_; }
    bool is_null() const { return type_ == Type::null; }
    bool is_object() const { return type_ == Type::object; }
    bool is_array() const { return type_ == Type::array; }
    bool is_string() const { return type_ == Type::string; }
    bool is_number() const { return type_ == Type::number; }

    // Typed access; throws naming `what` when the type differs.
    bool as_bool(const std::string& what = "value") const;
    double as_double(const std::string& what = "value") const;
    int64_t as_int(const std::string& what = "value") const;  // must be integral
    const std::string& as_string(const std::string& what = "value") const;
    const std::vector<Json>& as_array(const std::string& what = "value") const;
    const std::map<std::string, Json>& as_object(const std::string& what = "value") const;

    bool has(const std::string& key) const;
    const Json& at(const std::string& key) const;  // throws when absent
    Json& operator[](const std::string& key);      // inserts (object only)
    void push_back(Json v);                        // array only

    std::string dump() const;  // compact, keys sorted

private:
    Type type_ = Type::null;
    bool b_ = false;
    double d_ = 0;
    int64_t i_ = 0;
    bool integral_ = false;
    std::string s_;
    std::vector<Json> a_;
    std::map<std::string, Json> o_;
};

}  // namespace hpt::io
