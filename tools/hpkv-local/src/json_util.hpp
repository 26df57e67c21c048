// Small JSON helpers: output escaping, UTF-8 validation, nesting-depth guard and
// the PATCH rule (RFC 7396 merge for two objects, otherwise plain append).
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace hpkv {

// Appends `s` as a quoted JSON string. Bytes >= 0x80 are copied as-is, so the
// input must be valid UTF-8 (callers validate with isValidUtf8 first).
void appendJsonString(std::string& out, std::string_view s);
std::string jsonString(std::string_view s);

bool isValidUtf8(std::string_view s);

// Maximum [ / { nesting outside string literals. Used to refuse documents that
// would make Poco's recursive object handling blow the thread stack.
std::size_t jsonNestingDepth(std::string_view s);

// Applies HPKV PATCH semantics. If both `stored` and `patch` parse as JSON
// objects the result is the RFC 7396 merge (nested objects merged, arrays and
// scalars replaced, null deletes); otherwise the result is stored + patch.
std::string applyPatch(const std::string& stored, const std::string& patch);

}  // namespace hpkv
