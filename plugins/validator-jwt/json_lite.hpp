// A small JSON reader for JWT headers and claims: enough of RFC 8259 for tokens, with a
// depth limit so a hostile token cannot exhaust the stack. Keeps the plugin SDK-only.
#pragma once
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace jsonlite {

struct Value {
    enum Type { Null, Bool, Number, String, Array, Object } type = Null;
    bool b = false;
    double n = 0;
    std::string s;
    std::vector<Value> a;
    std::vector<std::pair<std::string, Value>> o;
    // Member of an object (last one wins, like most parsers), or nullptr.
    const Value* get(std::string_view key) const;
};

// False (and err) on anything that is not exactly one JSON value.
bool parse(std::string_view text, Value& out, std::string& err);

}  // namespace jsonlite
