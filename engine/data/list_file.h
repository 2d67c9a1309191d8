// A list file names a dataset's images, one per line: "path" or "path label" (label a whole number
// of at most 9 digits, after the last blank). Blank lines and comments (a '#' at the start of a
// line or after a blank) are skipped; either every entry has a label or none has.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace hpt::data {

struct ListEntry {
    std::string path;    // as written (relative paths are the caller's to resolve)
    int64_t label = -1;  // -1: unlabeled
    size_t line = 0;     // 1-based, for messages
};

// The entries of a list file's bytes; errors name `origin` and the line.
std::vector<ListEntry> parse_list_file(const uint8_t* data, size_t size, const std::string& origin);

}  // namespace hpt::data
