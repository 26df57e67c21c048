// JSON parser (host/common/json): strict, depth- and size-bounded. A parsed value dumps to
// text that parses to an equal value and dumps to the same text again; tryParse and parse
// agree.
#include <string>

#include "common/json.hpp"
#include "fuzz_check.hpp"

using namespace sf;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    json::ParseLimits lim;
    lim.maxDepth = 32;
    lim.maxLength = 1 << 16;
    json::Value v;
    std::string err;
    bool ok = json::tryParse(text, v, err, lim);
    bool threw = false;
    try {
        json::parse(text, lim);
    } catch (const json::ParseError& e) {
        threw = true;
        FUZZ_CHECK(e.offset <= text.size());
    }
    FUZZ_CHECK(ok != threw);
    if (!ok) {
        FUZZ_CHECK(!err.empty());
        return 0;
    }
    std::string out = v.dump();
    json::Value w;
    FUZZ_CHECK(json::tryParse(out, w, err, lim));
    FUZZ_CHECK(w == v);
    FUZZ_CHECK(w.dump() == out);
    std::string quoted = json::quote(text);
    FUZZ_CHECK(json::tryParse(quoted, w, err, lim) && w.isString());
    return 0;
}
