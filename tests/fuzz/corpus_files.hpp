// The fuzz corpus, for the unit tests that replay it through each fuzz target: the bytes
// of every file in tests/fuzz/corpus/, with its path. Knows nothing of the targets.
#pragma once

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

namespace okserve::fuzz {

// Every corpus file as (path, bytes); empty when the folder is missing.
inline std::vector<std::pair<std::string, std::string>> corpus_files() {
    const std::filesystem::path dir = std::filesystem::path(__FILE__).parent_path() / "corpus";
    std::vector<std::pair<std::string, std::string>> out;
    if (!std::filesystem::is_directory(dir)) return out;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        std::ifstream in(entry.path(), std::ios::binary);
        out.emplace_back(entry.path().string(), std::string((std::istreambuf_iterator<char>(in)), {}));
    }
    return out;
}

}  // namespace okserve::fuzz
