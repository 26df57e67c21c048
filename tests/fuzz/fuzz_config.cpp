// Config loader (host/config): the input is a config text, YAML or JSON as the first byte
// says, loaded as streamfenced loads a file. Any problem must surface as a ConfigError with
// at least one message, nothing else.
#include <string>

#include "config/loader.hpp"
#include "fuzz_check.hpp"

using namespace sf;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    bool json = data[0] & 1;
    std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
    try {
        config::Config c = config::loadString(text, json ? "fuzz.json" : "fuzz.yaml",
                                              json ? config::Format::Json : config::Format::Yaml);
        (void)config::validate(c);
        (void)config::selectServers(c, "");
    } catch (const config::ConfigError& e) {
        FUZZ_CHECK(!e.messages().empty());
    }
    return 0;
}
