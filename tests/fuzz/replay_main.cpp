// The standalone driver of the g++ build: replays every file of the given corpus
// directories through a fuzz target's LLVMFuzzerTestOneInput, so `make test` runs each
// target over its committed corpus (seeds and every crash ever found) without libFuzzer.
// Exits non-zero when a directory holds no input: a replay of nothing proves nothing.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
    namespace fs = std::filesystem;
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s CORPUS_DIR...\n", argv[0]);
        return 2;
    }
    for (int a = 1; a < argc; ++a) {
        std::vector<fs::path> files;
        std::error_code ec;
        for (fs::recursive_directory_iterator it(argv[a], ec), end; !ec && it != end; it.increment(ec))
            if (it->is_regular_file()) files.push_back(it->path());
        if (ec) {
            std::fprintf(stderr, "%s: %s\n", argv[a], ec.message().c_str());
            return 2;
        }
        if (files.empty()) {
            std::fprintf(stderr, "%s: no corpus files\n", argv[a]);
            return 1;
        }
        for (const auto& f : files) {
            std::ifstream in(f, std::ios::binary);
            std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
            LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
        }
        std::printf("%s: %zu inputs replayed\n", argv[a], files.size());
    }
    return 0;
}
