#include "json_util.hpp"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/JSON/Stringifier.h>

#include <sstream>

#include "common/json.hpp"

namespace hpkv {

// Escaping is the host's JSON writer, so both sides quote exactly like JSON.stringify.
void appendJsonString(std::string& out, std::string_view s) { sf::json::quoteTo(out, s); }

std::string jsonString(std::string_view s) { return sf::json::quote(s); }

bool isValidUtf8(std::string_view s) {
    std::size_t i = 0, n = s.size();
    while (i < n) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) { ++i; continue; }
        std::size_t len;
        unsigned cp;
        if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
        else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
        else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
        else return false;
        if (i + len > n) return false;
        for (std::size_t k = 1; k < len; ++k) {
            unsigned char cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3F);
        }
        // Reject overlong forms, surrogates and out-of-range code points.
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return false;
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += len;
    }
    return true;
}

std::size_t jsonNestingDepth(std::string_view s) {
    std::size_t depth = 0, maxDepth = 0;
    bool inString = false, escaped = false;
    for (char c : s) {
        if (inString) {
            if (escaped) escaped = false;
            else if (c == '\\') escaped = true;
            else if (c == '"') inString = false;
            continue;
        }
        if (c == '"') inString = true;
        else if (c == '{' || c == '[') { if (++depth > maxDepth) maxDepth = depth; }
        else if ((c == '}' || c == ']') && depth > 0) --depth;
    }
    return maxDepth;
}

namespace {

using Poco::JSON::Object;
using Poco::Dynamic::Var;

constexpr std::size_t kMaxMergeDepth = 64;

bool isObject(const Var& v) { return !v.isEmpty() && v.type() == typeid(Object::Ptr); }

Object::Ptr parseObject(const std::string& text) {
    // Cheap pre-checks before running the parser: objects only, bounded depth.
    auto first = text.find_first_not_of(" \t\r\n");
    if (first == std::string::npos || text[first] != '{') return nullptr;
    if (jsonNestingDepth(text) > kMaxMergeDepth) return nullptr;
    try {
        Poco::JSON::Parser parser(new Poco::JSON::ParseHandler(true));
        Var v = parser.parse(text);
        if (!isObject(v)) return nullptr;
        return v.extract<Object::Ptr>();
    } catch (const std::exception&) {
        return nullptr;
    }
}

// RFC 7396 MergePatch(target, patch) for an object patch; target may be null.
Object::Ptr merge(const Object::Ptr& target, const Object::Ptr& patch) {
    Object::Ptr out = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    if (target) {
        for (const auto& name : target->getNames()) {
            if (!patch->has(name)) { out->set(name, target->get(name)); continue; }
            Var pv = patch->get(name);
            if (pv.isEmpty()) continue;  // null removes the member
            Var tv = target->get(name);
            if (isObject(pv)) out->set(name, merge(isObject(tv) ? tv.extract<Object::Ptr>() : nullptr, pv.extract<Object::Ptr>()));
            else out->set(name, pv);
        }
    }
    for (const auto& name : patch->getNames()) {
        if (target && target->has(name)) continue;
        Var pv = patch->get(name);
        if (pv.isEmpty()) continue;
        if (isObject(pv)) out->set(name, merge(nullptr, pv.extract<Object::Ptr>()));
        else out->set(name, pv);
    }
    return out;
}

}  // namespace

std::string applyPatch(const std::string& stored, const std::string& patch) {
    Object::Ptr a = parseObject(stored);
    Object::Ptr b = a ? parseObject(patch) : nullptr;
    if (!a || !b) return stored + patch;
    std::ostringstream os;
    Poco::JSON::Stringifier::stringify(merge(a, b), os, 0, -1, Poco::JSON_PRESERVE_KEY_ORDER);
    return os.str();
}

}  // namespace hpkv
