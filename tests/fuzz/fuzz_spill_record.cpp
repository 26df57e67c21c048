// Spill record data (host/delivery/spill_record): what a storage backend hands back is
// decoded without reading past its end; whatever decodes re-encodes to data that decodes to
// the same payload and attachments.
#include <string>
#include <vector>

#include "delivery/spill_record.hpp"
#include "fuzz_check.hpp"

using namespace sf;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string in(reinterpret_cast<const char*>(data), size);
    std::string json;
    std::vector<std::string> parts;
    if (!delivery::decodeSpillData(in, json, parts)) return 0;
    size_t total = json.size();
    for (auto& p : parts) total += p.size();
    FUZZ_CHECK(total <= size);
    delivery::OutMessage m;
    m.payload = json;
    m.attachments = parts;
    std::string again = delivery::encodeSpillData(m);
    std::string json2;
    std::vector<std::string> parts2;
    // JSON text never starts with the envelope's NUL; arbitrary bytes might, without parts.
    if (!parts.empty() || json.empty() || json[0] != '\0') {
        FUZZ_CHECK(delivery::decodeSpillData(again, json2, parts2));
        FUZZ_CHECK(json2 == json);
        FUZZ_CHECK(parts2 == parts);
    }
    return 0;
}
