// What every fuzz target shares: the libFuzzer entry point's signature and a check that
// aborts (a crash the fuzzer records, a failure the corpus replay reports) when a property
// of the parser under test does not hold. Not assert(): it must hold in release builds too.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#define FUZZ_CHECK(cond)                                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            std::fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #cond); \
            std::abort();                                                                  \
        }                                                                                  \
    } while (0)

namespace sffuzz {

// Splits the input at the first occurrence of sep; `rest` is empty when there is none.
inline std::string_view splitAt(std::string_view& in, char sep) {
    size_t p = in.find(sep);
    std::string_view head = in.substr(0, p);
    in = p == std::string_view::npos ? std::string_view{} : in.substr(p + 1);
    return head;
}

}  // namespace sffuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
