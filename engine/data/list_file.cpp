#include "engine/data/list_file.h"

#include <algorithm>
#include <cctype>

#include "engine/core/error.h"

namespace hpt::data {
namespace {

bool blank(char c) {
    return std::isspace(static_cast<unsigned char>(c)) != 0;
}

// The line without its comment and surrounding blanks.
std::string content(std::string line) {
    const size_t hash = line.find('#');
    if (hash == 0 || (hash != std::string::npos && (line[hash - 1] == ' ' || line[hash - 1] == '\t')))
        line.resize(hash);
    while (!line.empty() && blank(line.back())) line.pop_back();
    size_t lead = 0;
    while (lead < line.size() && blank(line[lead])) ++lead;
    return line.substr(lead);
}

}  // namespace

std::vector<ListEntry> parse_list_file(const uint8_t* data, size_t size, const std::string& origin) {
    // A UTF-8 byte order mark (Windows Notepad writes one) became part of the first path.
    if (size >= 3 && data[0] == 0xEF && data[1] == 0xBB && data[2] == 0xBF) data += 3, size -= 3;
    const std::string text(reinterpret_cast<const char*>(data), size);
    // A binary file forced to be read as a list printed its bytes as "paths" in the errors.
    for (size_t i = 0; i < size; ++i) {
        const uint8_t c = data[i];
        if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != '\v') || c == 0x7f)
            HPT_THROW(origin, ": not a text file (byte ", int(c), " at offset ", i,
                      "); a list file is text, a path and an optional label per line");
    }
    std::vector<ListEntry> entries;
    int labeled = -1;  // unknown until the first entry
    size_t line_no = 0;
    for (size_t b = 0; b < text.size();) {
        size_t e = text.find('\n', b);
        if (e == std::string::npos) e = text.size();
        std::string line = content(text.substr(b, e - b));
        b = e + 1;
        ++line_no;
        if (line.empty()) continue;
        // "path label" when the last token is a whole number; else the line is a path.
        ListEntry en;
        const size_t sp = line.find_last_of(" \t");
        if (sp != std::string::npos) {
            const std::string tok = line.substr(sp + 1);
            const bool digits =
                !tok.empty() && tok.size() <= 9 &&
                std::all_of(tok.begin(), tok.end(), [](char c) { return c >= '0' && c <= '9'; });
            if (digits) {
                en.label = std::stoll(tok);
                line.resize(sp);
                while (!line.empty() && blank(line.back())) line.pop_back();  // "a.png\r 1" names a.png
            }
        }
        const int has = en.label >= 0;
        if (labeled >= 0 && has != labeled) {
            const ListEntry& first = entries.front();
            HPT_THROW(origin, ":", line_no, ": this line has ", has ? "a label" : "no label", " but line ", first.line,
                      " ('", first.path, first.label >= 0 ? " " + std::to_string(first.label) : "", "') has ",
                      has ? "none" : "one", "; every line needs a label (a whole number after the last blank) or none does");
        }
        labeled = has;
        en.path = std::move(line);
        en.line = line_no;
        entries.push_back(std::move(en));
    }
    if (entries.empty()) HPT_THROW(origin, ": the list file names no images");
    return entries;
}

}  // namespace hpt::data
