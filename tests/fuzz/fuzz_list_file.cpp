// List files: parse or throw hpt::Error. Every entry is a non-empty path with no surrounding
// blanks or newline, and either every entry has a label (0 .. 999999999) or none has.
#include <cctype>
#include <cstdint>
#include <cstdlib>

#include "engine/core/error.h"
#include "engine/data/list_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        const auto entries = hpt::data::parse_list_file(data, size, "fuzz.txt");
        if (entries.empty()) std::abort();
        const bool labeled = entries[0].label >= 0;
        for (const hpt::data::ListEntry& e : entries) {
            const std::string& p = e.path;
            if (p.empty() || p.find('\n') != std::string::npos) std::abort();
            if (std::isspace(static_cast<unsigned char>(p.front())) ||
                std::isspace(static_cast<unsigned char>(p.back())))
                std::abort();
            if ((e.label >= 0) != labeled || e.label > 999999999) std::abort();
        }
    } catch (const hpt::Error&) {
    }
    return 0;
}
