#include "hpt/config.h"

#include <cstdint>
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <type_traits>

// Debian's toml++ 3.3 asserts, where it should report an error, on some malformed input (a table
// name starting with a character that cannot start a key, such as "[)moco]"; found by fuzzing
// parse_config). Release builds compile its asserts out and report a parse error naming the line;
// so does every build with this, instead of aborting on a user's config.
#define TOML_ASSERT(expr) static_cast<void>(0)
#include <toml++/toml.h>

#include "engine/core/device.h"
#include "engine/core/error.h"
#include "engine/data/dataset.h"
#include "ssl/augment.h"
#include "ssl/augment_params.h"

namespace hpt::pipeline {

namespace {

enum class Kind { i64, u64, f64, boolean, str, str_list };

struct Field {
    std::string key;  // "run.seed", or for stage fields just the field name ("iterations")
    Kind kind;
    bool stage;
    std::function<void*(RunConfig&, StageConfig*)> ptr;
};

// The C++ type each kind is read and written as; the macros check every member against it at
// compile time (a field of another type would be written through a pointer of the wrong size).
using kind_i64 = int64_t;
using kind_u64 = uint64_t;
using kind_f64 = double;
using kind_boolean = bool;
using kind_str = std::string;
using kind_str_list = std::vector<std::string>;

#define HPT_FIELD(key, kind, expr)                                                                        \
    Field{key, Kind::kind, false, [](RunConfig& c, StageConfig*) -> void* {                               \
              static_assert(std::is_same<std::remove_reference_t<decltype(expr)>, kind_##kind>::value,  \
                            "config field " key " is not of its kind's type");                          \
              return &(expr);                                                                             \
          }}
#define HPT_STAGE_FIELD(key, kind, member)                                                                \
    Field{key, Kind::kind, true, [](RunConfig&, StageConfig* s) -> void* {                                \
              static_assert(std::is_same<decltype(s->member), kind_##kind>::value,                       \
                            "stage field " key " is not of its kind's type");                           \
              return &s->member;                                                                          \
          }}

const std::vector<Field>& fields() {
    static const std::vector<Field> f{
        HPT_FIELD("run.name", str, c.run.name),
        HPT_FIELD("run.seed", u64, c.run.seed),
        HPT_FIELD("run.device", str, c.run.device),
        HPT_FIELD("run.out", str, c.run.out),
        HPT_FIELD("run.checkpoint_every", i64, c.run.checkpoint_every),
        HPT_FIELD("run.log_every", i64, c.run.log_every),
        HPT_FIELD("run.strict_data", boolean, c.run.strict_data),
        HPT_FIELD("run.load_size", i64, c.run.load_size),
        HPT_FIELD("model.depth", i64, c.model.depth),
        HPT_FIELD("model.small_stem", boolean, c.model.small_stem),
        HPT_FIELD("model.width", f64, c.model.width),
        HPT_FIELD("model.in_channels", i64, c.model.in_channels),
        HPT_FIELD("model.proj_dim", i64, c.model.proj_dim),
        HPT_FIELD("moco.queue", i64, c.moco.queue),
        HPT_FIELD("moco.momentum", f64, c.moco.momentum),
        HPT_FIELD("moco.temperature", f64, c.moco.temperature),
        HPT_FIELD("moco.bn_groups", i64, c.moco.bn_groups),
        HPT_FIELD("augment.crop_min_scale", f64, c.augment.crop_min_scale),
        HPT_FIELD("augment.crop_max_scale", f64, c.augment.crop_max_scale),
        HPT_FIELD("augment.crop_ratio_min", f64, c.augment.crop_ratio_min),
        HPT_FIELD("augment.crop_ratio_max", f64, c.augment.crop_ratio_max),
        HPT_FIELD("augment.crop_attempts", i64, c.augment.crop_attempts),
        HPT_FIELD("augment.blur_radius_sigmas", f64, c.augment.blur_radius_sigmas),
        HPT_FIELD("augment.brightness", f64, c.augment.brightness),
        HPT_FIELD("augment.contrast", f64, c.augment.contrast),
        HPT_FIELD("augment.saturation", f64, c.augment.saturation),
        HPT_FIELD("augment.hue", f64, c.augment.hue),
        HPT_FIELD("augment.jitter_p", f64, c.augment.jitter_p),
        HPT_FIELD("augment.gray_p", f64, c.augment.gray_p),
        HPT_FIELD("augment.blur_p", f64, c.augment.blur_p),
        HPT_FIELD("augment.flip_p", f64, c.augment.flip_p),
        HPT_FIELD("augment.blur_sigma_min", f64, c.augment.blur_sigma_min),
        HPT_FIELD("augment.blur_sigma_max", f64, c.augment.blur_sigma_max),
        HPT_FIELD("eval.linear_probe", boolean, c.eval.linear_probe),
        HPT_FIELD("eval.knn", boolean, c.eval.knn),
        HPT_FIELD("eval.knn_k", i64, c.eval.knn_k),
        HPT_FIELD("eval.knn_t", f64, c.eval.knn_t),
        HPT_FIELD("eval.probe_epochs", i64, c.eval.probe_epochs),
        HPT_FIELD("eval.probe_lr", f64, c.eval.probe_lr),
        HPT_FIELD("eval.probe_weight_decay", f64, c.eval.probe_weight_decay),
        HPT_FIELD("eval.max_train", i64, c.eval.max_train),
        HPT_FIELD("eval.every", i64, c.eval.every),
        HPT_FIELD("eval.monitor_probe", boolean, c.eval.monitor_probe),
        HPT_FIELD("dist.backend", str, c.dist.backend),
        HPT_FIELD("dist.timeout_s", f64, c.dist.timeout_s),
        HPT_FIELD("dist.bucket_mb", f64, c.dist.bucket_mb),
        HPT_STAGE_FIELD("name", str, name),
        HPT_STAGE_FIELD("data", str, data),
        HPT_STAGE_FIELD("init", str, init),
        HPT_STAGE_FIELD("iterations", i64, iterations),
        HPT_STAGE_FIELD("batch", i64, batch),
        HPT_STAGE_FIELD("lr", f64, lr),
        HPT_STAGE_FIELD("weight_decay", f64, weight_decay),
        HPT_STAGE_FIELD("policy", str, policy),
        HPT_STAGE_FIELD("image_size", i64, image_size),
        HPT_STAGE_FIELD("trainable", str, trainable),
        HPT_STAGE_FIELD("eval_data", str_list, eval_data),
    };
    return f;
}
#undef HPT_FIELD
#undef HPT_STAGE_FIELD

size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        cur[0] = i;
        for (size_t j = 1; j <= b.size(); ++j)
            cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
        prev.swap(cur);
    }
    return prev[b.size()];
}

// The nearest candidate when it is near enough to be meant: the whole key within a third of its
// length in edits, or else its last dotted part (`iterations` for `stage.<name>.iterations`,
// `run.iteratons` too). A floor of 3 edits suggested 'auto' for 'gloo'.
std::string suggestion(const std::string& key, const std::vector<std::string>& candidates) {
    const auto nearest = [&](auto part) {
        std::string best;
        size_t bd = SIZE_MAX;
        for (const std::string& c : candidates) {
            const size_t d = edit_distance(part(key), part(c));
            if (d < bd) bd = d, best = c;
        }
        return bd <= std::max<size_t>(1, part(key).size() / 3) ? best : std::string();
    };
    std::string best = nearest([](const std::string& k) { return k; });
    if (best.empty()) best = nearest([](const std::string& k) { return k.substr(k.rfind('.') + 1); });
    return best.empty() ? "" : " (did you mean '" + best + "'?)";
}

const Field* find_field(const std::string& key, bool stage) {
    for (const Field& f : fields())
        if (f.stage == stage && f.key == key) return &f;
    return nullptr;
}

[[noreturn]] void unknown_key(const std::string& origin, const std::string& shown, const std::string& lookup,
                              bool stage) {
    std::vector<std::string> cands;
    for (const Field& f : fields())
        if (f.stage == stage) cands.push_back(f.key);
    HPT_THROW(origin, ": unknown key '", shown, "'", suggestion(lookup, cands));
}

void check_toml_text(const std::string& t, const std::string& origin);

void set_from_string(const Field& f, RunConfig& c, StageConfig* s, const std::string& v, const std::string& what) {
    void* p = f.ptr(c, s);
    try {
        size_t used = 0;
        switch (f.kind) {
            case Kind::i64: *static_cast<int64_t*>(p) = std::stoll(v, &used); break;
            case Kind::u64: {  // as TOML holds it: 0 to 2^63 - 1 (std::stoull wrapped "-1" to 2^64 - 1)
                const long long x = std::stoll(v, &used);
                if (x < 0) HPT_THROW(what, ": '", v, "' is negative");
                *static_cast<uint64_t*>(p) = uint64_t(x);
                break;
            }
            case Kind::f64: *static_cast<double*>(p) = std::stod(v, &used); break;
            case Kind::boolean:
                HPT_CHECK(v == "true" || v == "false" || v == "1" || v == "0", what, ": '", v,
                          "' is not true or false");
                *static_cast<bool*>(p) = v == "true" || v == "1";
                used = v.size();
                break;
            case Kind::str: *static_cast<std::string*>(p) = v, used = v.size(); break;
            case Kind::str_list: {
                auto& l = *static_cast<std::vector<std::string>*>(p);
                l.clear();
                if (!v.empty() && v[0] == '[') {  // TOML's form, as --print-config shows it: ["a", "b"]
                    const std::string text = "v = " + v;
                    check_toml_text(text, what);
                    toml::table t;
                    try {
                        t = toml::parse(text, what);
                    } catch (const toml::parse_error& e) {
                        HPT_THROW(what, ": '", v, "' is not a TOML list of strings: ", e.description());
                    }
                    const toml::array* a = t["v"].as_array();
                    HPT_CHECK(a, what, ": '", v, "' is not a TOML list of strings");
                    for (const toml::node& e : *a) {
                        HPT_CHECK(e.is_string(), what, ": '", v, "' holds a value that is not a string");
                        l.push_back(e.as_string()->get());
                    }
                    used = v.size();
                    break;
                }
                std::stringstream ss(v);
                std::string item;
                while (std::getline(ss, item, ','))
                    if (!item.empty()) l.push_back(item);
                used = v.size();
                break;
            }
        }
        HPT_CHECK(used == v.size(), what, ": '", v, "' has trailing characters");
    } catch (const std::invalid_argument&) {
        HPT_THROW(what, ": '", v, "' is not a valid ", f.kind == Kind::f64 ? "number" : "integer");
    } catch (const std::out_of_range&) {
        HPT_THROW(what, ": '", v, "' is out of range");
    }
}

void set_from_toml(const Field& f, RunConfig& c, StageConfig* s, const toml::node& n, const std::string& what) {
    void* p = f.ptr(c, s);
    auto type_error = [&](const char* want) { HPT_THROW(what, " should be ", want); };
    switch (f.kind) {
        case Kind::i64:
            if (!n.is_integer()) type_error("an integer");
            *static_cast<int64_t*>(p) = n.as_integer()->get();
            break;
        case Kind::u64:
            if (!n.is_integer() || n.as_integer()->get() < 0) type_error("a non-negative integer");
            *static_cast<uint64_t*>(p) = uint64_t(n.as_integer()->get());
            break;
        case Kind::f64:
            if (n.is_integer()) {
                *static_cast<double*>(p) = double(n.as_integer()->get());
            } else if (n.is_floating_point()) {
                *static_cast<double*>(p) = n.as_floating_point()->get();
            } else {
                type_error("a number");
            }
            break;
        case Kind::boolean:
            if (!n.is_boolean()) type_error("true or false");
            *static_cast<bool*>(p) = n.as_boolean()->get();
            break;
        case Kind::str:
            if (!n.is_string()) type_error("a string");
            *static_cast<std::string*>(p) = n.as_string()->get();
            break;
        case Kind::str_list: {
            auto& l = *static_cast<std::vector<std::string>*>(p);
            l.clear();
            if (n.is_string()) {
                l.push_back(n.as_string()->get());
            } else if (n.is_array()) {
                for (const toml::node& e : *n.as_array()) {
                    if (!e.is_string()) type_error("a list of strings");
                    l.push_back(e.as_string()->get());
                }
            } else {
                type_error("a string or a list of strings");
            }
            break;
        }
    }
}

io::Json field_json(const Field& f, RunConfig& c, StageConfig* s) {
    void* p = f.ptr(c, s);
    switch (f.kind) {
        case Kind::i64: return io::Json::integer(*static_cast<int64_t*>(p));
        case Kind::u64: return io::Json::integer(int64_t(*static_cast<uint64_t*>(p)));
        case Kind::f64: return io::Json::number(*static_cast<double*>(p));
        case Kind::boolean: return io::Json::boolean(*static_cast<bool*>(p));
        case Kind::str: return io::Json::string(*static_cast<std::string*>(p));
        case Kind::str_list: {
            io::Json a = io::Json::array();
            for (const std::string& e : *static_cast<std::vector<std::string>*>(p)) a.push_back(io::Json::string(e));
            return a;
        }
    }
    return {};
}

StageConfig* find_stage(RunConfig& c, const std::string& id, const std::string& what) {
    for (auto& s : c.stages)
        if (s.name == id) return &s;
    bool digits = !id.empty() && id.size() < 4;
    for (char ch : id) digits = digits && ch >= '0' && ch <= '9';
    if (digits) {
        const size_t i = size_t(std::stoi(id));
        HPT_CHECK(i < c.stages.size(), what, ": stage index ", i, " but the config has ", c.stages.size(), " stages");
        return &c.stages[i];
    }
    std::vector<std::string> names;
    for (auto& s : c.stages) names.push_back(s.name);
    HPT_THROW(what, ": no stage named '", id, "'", suggestion(id, names));
}

// Debian's toml++ 3.3 decides whether a character is whitespace through a table with holes: for
// the code points in U+00A1..U+0499, U+2C5E..U+3057 and U+FB26..U+FEFE (U+3000 aside) it
// reaches __builtin_unreachable (found by fuzzing parse_config). It asks that of every character
// outside strings, of every character of a key (quoted ones too), and of the character after a
// backslash in a string (after a line-ending backslash, of the first one past the whitespace).
// Valid TOML has non-ASCII characters only in strings and comments; this refuses them in the
// other places, and in those three, before toml++ sees them. Non-ASCII string values (paths,
// names) are fine.
void check_toml_text(const std::string& t, const std::string& origin) {
    int64_t line = 1, col = 0;
    size_t i = 0;
    int depth = 0;          // brackets open in the current value
    bool in_value = false;  // after a key's '=' until the line ends outside brackets
    bool header = false;    // on a [table] line
    bool line_start = true;
    auto refuse = [&](const char* where) {
        HPT_THROW(origin, ":", line, ":", col + 1, ": a non-ASCII character ", where,
                  " (only string values and comments may have them; Debian's toml++ 3.3 misreads the others)");
    };
    auto high = [&](size_t k) { return k < t.size() && static_cast<unsigned char>(t[k]) >= 0x80; };
    auto blank = [&](size_t k) { return t[k] == ' ' || t[k] == '\t' || t[k] == '\r' || t[k] == '\n'; };
    auto next = [&]() {
        if (t[i++] == '\n') {
            ++line, col = 0;
        } else {
            ++col;
        }
    };
    auto starts = [&](const char* s) { return t.compare(i, std::strlen(s), s) == 0; };
    // A string is a key when '=' or '.' follows it on its line (or ']' in a table header).
    auto key_follows = [&]() {
        size_t k = i;
        while (k < t.size() && (t[k] == ' ' || t[k] == '\t')) ++k;
        return k < t.size() && (t[k] == '=' || t[k] == '.' || (header && t[k] == ']'));
    };
    // From just inside a string to just past `close` (a one-line string also ends at its line's
    // end: unterminated, it is toml++'s error to report).
    auto skip_string = [&](const char* close, bool escapes, bool one_line) {
        bool any_high = false;
        while (i < t.size() && !starts(close)) {
            if (one_line && t[i] == '\n') return;
            if (escapes && t[i] == '\\') {
                next();
                if (i < t.size() && blank(i)) {  // a line-ending backslash: what follows is content
                    while (i < t.size() && blank(i)) next();
                    if (high(i)) refuse("first on a line after a line-ending backslash");
                    continue;
                }
                if (high(i)) refuse("after a backslash");
                if (i < t.size()) next();  // the escaped character
                continue;
            }
            any_high = any_high || high(i);
            next();
        }
        for (size_t k = 0; k < std::strlen(close) && i < t.size(); ++k) next();
        if (any_high && key_follows()) refuse("in a quoted key");
    };
    while (i < t.size()) {
        const char c = t[i];
        if (starts("\"\"\"") || starts("'''")) {
            const char q[4] = {c, c, c, 0};
            next(), next(), next();
            skip_string(q, c == '"', false);
        } else if (c == '"' || c == '\'') {
            const char q[2] = {c, 0};
            next();
            skip_string(q, c == '"', true);
        } else if (c == '#') {
            while (i < t.size() && t[i] != '\n') next();
        } else if (high(i)) {
            refuse("outside a string or comment");
        } else {
            if (c == '\n' && depth == 0) in_value = header = false;
            if (c == '=' && depth == 0) in_value = true;
            if (c == '[' && !in_value && line_start) header = true;
            if ((c == '[' || c == '{') && in_value) ++depth;
            if ((c == ']' || c == '}') && in_value && depth > 0) --depth;
            next();
        }
        line_start = c == '\n' || (line_start && (c == ' ' || c == '\t'));
    }
}

// Every number of the config is finite: TOML has inf and nan, and moco.temperature = inf trained
// "fine", then was written to the manifest as null, which no later command could read.
void check_finite_numbers(const RunConfig& c) {
    RunConfig m = c;  // Field::ptr takes a mutable config
    for (const Field& f : fields()) {
        if (f.kind != Kind::f64) continue;
        for (size_t i = 0; i < (f.stage ? c.stages.size() : 1); ++i) {
            const double v = *static_cast<double*>(f.ptr(m, f.stage ? &m.stages[i] : nullptr));
            HPT_CHECK(std::isfinite(v), f.stage ? "stage." + c.stages[i].name + "." + f.key : f.key, " = ", v,
                      ": must be a finite number");
        }
    }
}

}  // namespace

RunConfig parse_config(const std::string& text, const std::string& origin) {
    check_toml_text(text, origin);
    toml::table root;
    try {
        root = toml::parse(text, origin);
    } catch (const toml::parse_error& e) {
        const auto& at = e.source().begin;
        HPT_THROW(origin, ":", at.line, ":", at.column, ": ", e.description());
    }
    RunConfig c;
    for (auto&& [k, v] : root) {
        const std::string section(k.str());
        if (section == "stage") {
            if (!v.is_array_of_tables()) HPT_THROW(origin, ": 'stage' must be a list of tables ([[stage]])");
            for (const toml::node& st : *v.as_array()) {
                StageConfig s;
                s.name = "stage" + std::to_string(c.stages.size());
                for (auto&& [fk, fv] : *st.as_table()) {
                    const std::string key(fk.str());
                    const Field* f = find_field(key, true);
                    if (!f) unknown_key(origin, "stage." + key, key, true);
                    set_from_toml(*f, c, &s, fv, origin + ": stage." + key);
                }
                c.stages.push_back(s);
            }
            continue;
        }
        if (!v.is_table()) {
            std::vector<std::string> cands = known_keys();  // `seed = 3` above every table: [run] seed
            for (const char* t : {"run", "model", "moco", "augment", "eval", "dist", "stage"}) cands.push_back(t);
            HPT_THROW(origin, ": unknown top-level key '", section, "'", suggestion(section, cands));
        }
        for (auto&& [fk, fv] : *v.as_table()) {
            const std::string key = section + "." + std::string(fk.str());
            const Field* f = find_field(key, false);
            if (!f) unknown_key(origin, key, key, false);
            set_from_toml(*f, c, nullptr, fv, origin + ": " + key);
        }
    }
    return c;
}

RunConfig load_config(const std::string& path) {
    std::ifstream in(path);
    HPT_CHECK(in, "cannot open config file ", path);
    std::stringstream ss;
    ss << in.rdbuf();
    return parse_config(ss.str(), path);
}

void apply_override(RunConfig& c, const std::string& assignment) {
    const size_t eq = assignment.find('=');
    HPT_CHECK(eq != std::string::npos && eq > 0, "--set '", assignment, "': expected key=value");
    const std::string key = assignment.substr(0, eq), value = assignment.substr(eq + 1);
    const std::string what = "--set " + key;
    if (key.rfind("stage.", 0) == 0) {
        const size_t dot = key.find('.', 6);
        HPT_CHECK(dot != std::string::npos, what, ": stage keys are stage.<name or index>.<field>");
        StageConfig* s = find_stage(c, key.substr(6, dot - 6), what);
        const std::string field = key.substr(dot + 1);
        const Field* f = find_field(field, true);
        if (!f) unknown_key("--set", key, field, true);
        set_from_string(*f, c, s, value, what);
        return;
    }
    const Field* f = find_field(key, false);
    if (!f) {
        std::vector<std::string> cands = known_keys();
        HPT_THROW("--set: unknown key '", key, "'", suggestion(key, cands));
    }
    set_from_string(*f, c, nullptr, value, what);
}

void validate(const EvalSection& e) {
    HPT_CHECK(e.knn_k >= 1, "eval.knn_k = ", e.knn_k, ": must be at least 1");
    HPT_CHECK(e.knn_t > 0, "eval.knn_t = ", e.knn_t, ": must be positive");
    HPT_CHECK(e.probe_epochs >= 1, "eval.probe_epochs = ", e.probe_epochs, ": must be at least 1");
    HPT_CHECK(e.probe_lr > 0 && e.probe_weight_decay >= 0, "eval.probe_lr must be positive and eval.probe_weight_decay >= 0");
    HPT_CHECK(e.max_train >= 0 && e.every >= 0, "eval.max_train and eval.every must be >= 0 (0: all / only at stage ends)");
}


ssl::AugmentConfig stage_augment(const RunConfig& cfg, const StageConfig& st, int32_t size) {
    ssl::AugmentConfig a = ssl::augment_policy(st.policy, size);
    const AugmentSection& s = cfg.augment;
    a.scale_min = s.crop_min_scale, a.scale_max = s.crop_max_scale;
    a.ratio_min = s.crop_ratio_min, a.ratio_max = s.crop_ratio_max;
    a.crop_attempts = int32_t(s.crop_attempts);
    a.blur_radius_sigmas = s.blur_radius_sigmas;
    a.brightness = s.brightness, a.contrast = s.contrast, a.saturation = s.saturation, a.hue = s.hue;
    a.jitter_p = s.jitter_p, a.gray_p = s.gray_p, a.blur_p = s.blur_p, a.flip_p = s.flip_p;
    a.blur_sigma_min = s.blur_sigma_min, a.blur_sigma_max = s.blur_sigma_max;
    ssl::apply_policy(a, st.policy);  // the policy switches its exclusions off again
    return a;
}

void validate(const RunConfig& c) {
    HPT_CHECK(!c.stages.empty(), "the config has no [[stage]]");
    check_finite_numbers(c);
    HPT_CHECK(!c.run.out.empty(), "run.out is empty: name the folder the run writes to");
    // Its spelling here (--print-config printed "gpu" and the run failed later); whether the GPU
    // exists is the run's to find out.
    if (c.run.device != "auto") {
        try {
            Device::parse(c.run.device);
        } catch (const Error&) {
            HPT_THROW("run.device = '", c.run.device, "': must be cpu, cuda, cuda:N or auto");
        }
    }
    HPT_CHECK(c.run.load_size >= 0 && c.run.load_size <= data::kMaxImageSide, "run.load_size = ", c.run.load_size,
              ": must be in [0, ", data::kMaxImageSide, "] (0: image files keep their size)");
    HPT_CHECK(c.model.depth == 18 || c.model.depth == 34 || c.model.depth == 50, "model.depth = ", c.model.depth,
              ": must be 18, 34 or 50");
    HPT_CHECK(c.model.width > 0 && c.model.width <= 4, "model.width = ", c.model.width, ": must be in (0, 4]");
    HPT_CHECK(c.model.proj_dim >= 1, "model.proj_dim = ", c.model.proj_dim, ": must be at least 1");
    HPT_CHECK(c.moco.bn_groups >= 0, "moco.bn_groups = ", c.moco.bn_groups, ": must be >= 0 (0: about 64 images a group)");
    HPT_CHECK(c.model.in_channels == 0 || c.model.in_channels == 1 || c.model.in_channels == 3,
              "model.in_channels = ", c.model.in_channels, ": must be 0 (from the data), 1 or 3");
    HPT_CHECK(c.moco.queue > 0 && c.moco.temperature > 0 && c.moco.momentum >= 0 && c.moco.momentum <= 1,
              "moco: queue must be positive, temperature positive, momentum in [0, 1]");
    static const std::vector<std::string> backends{"auto", "none", "mpi", "nccl"};
    HPT_CHECK(std::find(backends.begin(), backends.end(), c.dist.backend) != backends.end(), "dist.backend = '",
              c.dist.backend, "' (auto, none, mpi or nccl)", suggestion(c.dist.backend, backends));
    HPT_CHECK(c.dist.timeout_s >= 0 && c.dist.bucket_mb > 0, "dist.timeout_s must be >= 0 (0: no limit) and dist.bucket_mb > 0");
    HPT_CHECK(c.run.checkpoint_every >= 0 && c.run.log_every > 0, "run.checkpoint_every must be >= 0 and run.log_every > 0");
    // Checked here, before any training, so that a bad value cannot stop a run after its work.
    validate(c.eval);
    const AugmentSection& a = c.augment;
    HPT_CHECK(a.crop_min_scale > 0 && a.crop_min_scale <= a.crop_max_scale && a.crop_max_scale <= 1,
              "augment.crop_min_scale = ", a.crop_min_scale, ", augment.crop_max_scale = ", a.crop_max_scale,
              ": need 0 < min <= max <= 1");
    HPT_CHECK(a.crop_ratio_min > 0 && a.crop_ratio_min <= a.crop_ratio_max, "augment.crop_ratio_min = ",
              a.crop_ratio_min, ", augment.crop_ratio_max = ", a.crop_ratio_max, ": need 0 < min <= max");
    HPT_CHECK(a.crop_attempts >= 0 && a.crop_attempts <= ssl::kMaxCropAttempts, "augment.crop_attempts = ",
              a.crop_attempts, ": must be in [0, ", ssl::kMaxCropAttempts, "]");
    HPT_CHECK(a.blur_sigma_min > 0 && a.blur_sigma_min <= a.blur_sigma_max && a.blur_radius_sigmas > 0,
              "augment.blur_sigma_min/blur_sigma_max/blur_radius_sigmas: need 0 < min <= max and a positive radius factor");
    for (const auto& [name, p] : {std::pair<const char*, double>{"jitter_p", a.jitter_p}, {"gray_p", a.gray_p},
                                  {"blur_p", a.blur_p}, {"flip_p", a.flip_p}})
        HPT_CHECK(p >= 0 && p <= 1, "augment.", name, " = ", p, ": not a probability");
    std::vector<std::string> names;
    for (size_t i = 0; i < c.stages.size(); ++i) {
        const StageConfig& s = c.stages[i];
        const std::string w = "stage '" + s.name + "'";
        HPT_CHECK(std::find(names.begin(), names.end(), s.name) == names.end(), w, ": two stages have this name");
        // A stage's name is a folder of the run: no path of its own ("../x" wrote outside the run,
        // "a" and "./a" shared one folder).
        const bool plain = !s.name.empty() && s.name != "." && s.name != ".." &&
                           std::all_of(s.name.begin(), s.name.end(), [](char ch) {
                               return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-' || ch == '.';
                           });
        HPT_CHECK(plain, w, ": a stage name is a folder name: letters, digits, '_', '-' and '.', not '.' or '..'");
        names.push_back(s.name);
        HPT_CHECK(!s.data.empty(), w, ": no data (set stage.", s.name, ".data)");
        HPT_CHECK(s.image_size >= 0 && s.image_size <= data::kMaxImageSide, w, ": image_size = ", s.image_size,
                  ": must be in [0, ", data::kMaxImageSide, "] (0: the data's own size)");
        HPT_CHECK(s.iterations > 0 && s.batch > 1, w, ": iterations must be positive and batch at least 2");
        HPT_CHECK(c.moco.queue % s.batch == 0, w, ": moco.queue = ", c.moco.queue, " is not divisible by the batch ",
                  s.batch);
        HPT_CHECK(s.trainable == "all" || s.trainable == "bn", w, ": trainable = '", s.trainable, "' (all or bn)");
        const std::vector<std::string>& policies = ssl::policy_names();
        if (std::find(policies.begin(), policies.end(), s.policy) == policies.end()) {
            std::string known;
            for (const std::string& n : policies) known += (known.empty() ? "" : ", ") + n;
            HPT_THROW(w, ": policy = '", s.policy, "' (", known, ")", suggestion(s.policy, policies));
        }
        // The augmentation's own checks (hue, blur radius...) here too, so that they stop a bad value
        // before the data loads rather than when the loader starts.
        try {
            ssl::check_config(stage_augment(c, s, int32_t(s.image_size ? s.image_size : 1)));
        } catch (const Error& e) {
            throw Error(w + ": [augment] " + e.what());
        }
        HPT_CHECK(s.trainable != "bn" || s.init != "random", w,
                  ": trainable = 'bn' (HPT-BN) trains BN and the head of a pretrained backbone; from init = 'random' its "
                  "convolutions would stay random (use trainable = 'all', or init from a checkpoint or 'previous')");
        HPT_CHECK(s.init != "previous" || i > 0, w, ": init = 'previous' but it is the first stage (use 'random' or a checkpoint)");
        HPT_CHECK(s.lr >= 0 && s.weight_decay >= 0, w, ": negative lr or weight_decay");
    }
}

io::Json to_json(const RunConfig& cfg) {
    RunConfig c = cfg;
    io::Json j = io::Json::object();
    for (const Field& f : fields()) {
        if (f.stage) continue;
        const size_t dot = f.key.find('.');
        j[f.key.substr(0, dot)][f.key.substr(dot + 1)] = field_json(f, c, nullptr);
    }
    io::Json stages = io::Json::array();
    for (StageConfig& s : c.stages) {
        io::Json o = io::Json::object();
        for (const Field& f : fields())
            if (f.stage) o[f.key] = field_json(f, c, &s);
        stages.push_back(o);
    }
    j["stage"] = stages;
    return j;
}

RunConfig from_json(const io::Json& j) {
    // Through the TOML-free path: every field as a string override would lose lists; set directly.
    RunConfig c;
    auto set = [&](const Field& f, StageConfig* s, const io::Json& v) {
        void* p = f.ptr(c, s);
        switch (f.kind) {
            case Kind::i64: *static_cast<int64_t*>(p) = v.as_int(f.key); break;
            case Kind::u64: *static_cast<uint64_t*>(p) = uint64_t(v.as_int(f.key)); break;
            case Kind::f64: *static_cast<double*>(p) = v.as_double(f.key); break;
            case Kind::boolean: *static_cast<bool*>(p) = v.as_bool(f.key); break;
            case Kind::str: *static_cast<std::string*>(p) = v.as_string(f.key); break;
            case Kind::str_list: {
                auto& l = *static_cast<std::vector<std::string>*>(p);
                l.clear();
                for (const io::Json& e : v.as_array(f.key)) l.push_back(e.as_string(f.key));
                break;
            }
        }
    };
    for (const Field& f : fields()) {
        if (f.stage) continue;
        const size_t dot = f.key.find('.');
        const std::string sec = f.key.substr(0, dot), k = f.key.substr(dot + 1);
        if (j.has(sec) && j.at(sec).has(k)) set(f, nullptr, j.at(sec).at(k));
    }
    if (j.has("stage")) {
        for (const io::Json& o : j.at("stage").as_array()) {
            StageConfig s;
            for (const Field& f : fields())
                if (f.stage && o.has(f.key)) set(f, &s, o.at(f.key));
            c.stages.push_back(s);
        }
    }
    return c;
}

namespace {

// JSON's string form is a TOML basic string: the same escapes, control characters and DEL escaped.
std::string toml_string(const std::string& v) { return io::Json::string(v).dump(); }

// A double as a TOML float: "1" would read back as an integer.
std::string toml_number(double d) {
    std::string t = io::shortest_double(d);
    if (t.find_first_of(".eEn") == std::string::npos) t += ".0";
    return t;
}

std::string toml_value(const Field& f, RunConfig& c, StageConfig* s) {
    void* p = f.ptr(c, s);
    switch (f.kind) {
        case Kind::i64: return std::to_string(*static_cast<int64_t*>(p));
        case Kind::u64: return std::to_string(*static_cast<uint64_t*>(p));
        case Kind::f64: return toml_number(*static_cast<double*>(p));
        case Kind::boolean: return *static_cast<bool*>(p) ? "true" : "false";
        case Kind::str: return toml_string(*static_cast<std::string*>(p));
        case Kind::str_list: {
            std::string a = "[";
            for (const std::string& e : *static_cast<std::vector<std::string>*>(p))
                a += (a.size() > 1 ? ", " : "") + toml_string(e);
            return a + "]";
        }
    }
    return {};
}

// What a 0 stands for, where it is not a plain zero (a comment after the printed key).
std::string zero_note(const std::string& key, const StageConfig* s) {
    if (key == "lr" && s) return "# 0: 0.03 * batch / 256 = " + toml_number(s->effective_lr());
    static const std::vector<std::pair<std::string, std::string>> notes{
        {"run.checkpoint_every", "only at the end of each stage"},
        {"run.load_size", "image files keep their size"},
        {"model.in_channels", "the first stage's data decides (1 gray, 3 RGB)"},
        {"moco.bn_groups", "the most groups up to batch / 64 that divide the batch"},
        {"eval.every", "only at the end of each stage"},
        {"eval.max_train", "every train image"},
        {"dist.timeout_s", "no limit"},
        {"image_size", "the data's own size"}};
    for (const auto& [k, note] : notes)
        if (k == key) return "# 0: " + note;
    return "";
}

}  // namespace

std::string to_toml(const RunConfig& cfg) {
    RunConfig c = cfg;
    std::string out, section;
    const auto line = [&](const Field& f, const std::string& key, StageConfig* s) {
        const std::string v = toml_value(f, c, s);
        const std::string note = v == "0" || v == "0.0" ? zero_note(f.key, s) : "";
        out += key + " = " + v + (note.empty() ? "" : "  " + note) + "\n";
    };
    for (const Field& f : fields()) {
        if (f.stage) continue;
        const size_t dot = f.key.find('.');
        if (f.key.substr(0, dot) != section) {
            section = f.key.substr(0, dot);
            out += (out.empty() ? "[" : "\n[") + section + "]\n";
        }
        line(f, f.key.substr(dot + 1), nullptr);
    }
    for (StageConfig& s : c.stages) {
        out += "\n[[stage]]\n";
        for (const Field& f : fields())
            if (f.stage) line(f, f.key, &s);
    }
    return out;
}

std::vector<std::string> known_keys() {
    std::vector<std::string> k;
    for (const Field& f : fields()) k.push_back(f.stage ? "stage.<name>." + f.key : f.key);
    return k;
}

}  // namespace hpt::pipeline
