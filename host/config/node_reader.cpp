#include "config/node_reader.hpp"

#include "config/hints.hpp"

#include <cerrno>
#include <cstdlib>
#include <algorithm>

namespace sf::config {

SourceMark Errors::mark(const YAML::Mark& m, const std::string& keyPath) const {
    SourceMark s;
    s.file = file_;
    // yaml-cpp counts from 0 and uses -1 for "no position".
    s.line = m.line >= 0 ? m.line + 1 : 0;
    s.column = m.column >= 0 ? m.column + 1 : 0;
    s.keyPath = keyPath;
    return s;
}

void Errors::add(const YAML::Mark& m, const std::string& keyPath, const std::string& message) {
    add(mark(m, keyPath), message);
}

void Errors::add(const SourceMark& m, const std::string& message) {
    failed_.insert(m.keyPath);
    std::string prefix = m.str();
    list_.push_back(prefix.empty() ? message : prefix + ": " + message);
}

std::string childPath(const std::string& parent, const std::string& key) {
    return parent.empty() ? key : parent + "." + key;
}

std::string indexPath(const std::string& parent, size_t index) {
    return parent + "[" + std::to_string(index) + "]";
}

bool isQuoted(const YAML::Node& n) {
    // yaml-cpp tags quoted scalars "!" (non-specific); an explicit !!str also means string.
    return n.IsScalar() && (n.Tag() == "!" || n.Tag() == "tag:yaml.org,2002:str");
}

bool isNullScalar(const YAML::Node& n) {
    if (n.IsNull()) return true;
    if (!n.IsScalar() || isQuoted(n)) return false;
    const std::string& s = n.Scalar();
    return s == "~" || s == "null" || s == "Null" || s == "NULL";
}

std::string describeNode(const YAML::Node& n) {
    if (!n.IsDefined() || isNullScalar(n)) return "an empty value";
    if (n.IsMap()) return "a map";
    if (n.IsSequence()) return "a list";
    std::string s = n.Scalar();
    if (s.size() > 60) s = s.substr(0, 57) + "...";
    return "\"" + s + "\"";
}

std::optional<bool> asBool(const YAML::Node& n) {
    if (!n.IsScalar() || isQuoted(n)) return std::nullopt;
    const std::string& s = n.Scalar();
    // YAML 1.2 core schema only; yes/no/on/off are YAML 1.1 surprises we do not accept.
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
    return std::nullopt;
}

namespace {

bool looksDecimal(const std::string& s) {
    size_t i = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
    if (i >= s.size()) return false;
    for (; i < s.size(); ++i)
        if (s[i] < '0' || s[i] > '9') return false;
    return true;
}

}  // namespace

std::optional<int64_t> asInt(const YAML::Node& n) {
    if (!n.IsScalar() || isQuoted(n) || !looksDecimal(n.Scalar())) return std::nullopt;
    errno = 0;
    char* end = nullptr;
    long long v = std::strtoll(n.Scalar().c_str(), &end, 10);
    if (errno == ERANGE) return std::nullopt;
    return static_cast<int64_t>(v);
}

MapView::MapView(Errors& errors, const YAML::Node& node, const YAML::Mark& fallback, std::string path,
                 const std::vector<std::string>& allowedKeys)
    : errors_(errors), path_(std::move(path)), mark_(fallback) {
    collect(node, &allowedKeys);
}

MapView::MapView(Errors& errors, const YAML::Node& node, const YAML::Mark& fallback, std::string path)
    : errors_(errors), path_(std::move(path)), mark_(fallback) {
    collect(node, nullptr);
}

void MapView::collect(const YAML::Node& node, const std::vector<std::string>* allowed) {
    errors_.recordMark(path_, mark_);
    if (!node.IsDefined() || node.IsNull()) return;
    if (!node.IsMap()) {
        errors_.add(mark_, path_, "expected a map, got " + describeNode(node));
        ok_ = false;
        return;
    }
    for (auto it = node.begin(); it != node.end(); ++it) {
        // Copies, not references: yaml-cpp's operator-> hands out a temporary proxy.
        const YAML::Node k = it->first;
        if (!k.IsScalar()) {
            errors_.add(k.Mark(), path_, "expected a plain key, got " + describeNode(k));
            ok_ = false;
            continue;
        }
        const std::string key = k.Scalar();
        auto seen = keyMarks_.find(key);
        if (seen != keyMarks_.end()) {
            errors_.add(k.Mark(), childPath(path_, key),
                        "duplicate key \"" + key + "\" (first given at line " + std::to_string(seen->second.line + 1) + ")");
            ok_ = false;
            continue;
        }
        if (allowed && std::find(allowed->begin(), allowed->end(), key) == allowed->end()) {
            std::string hint = didYouMean(key, *allowed);
            if (hint.empty()) hint = " (expected one of: " + joinNames(*allowed) + ")";
            errors_.add(k.Mark(), childPath(path_, key), "unknown key \"" + key + "\"" + hint);
            ok_ = false;
            continue;
        }
        keyMarks_[key] = k.Mark();
        errors_.recordMark(childPath(path_, key), k.Mark());
        values_.emplace(key, it->second);
        order_.push_back(key);
    }
}

YAML::Node MapView::get(const std::string& key) const {
    auto it = values_.find(key);
    return it == values_.end() ? YAML::Node(YAML::NodeType::Undefined) : it->second;
}

YAML::Mark MapView::markOf(const std::string& key) const {
    auto it = keyMarks_.find(key);
    return it == keyMarks_.end() ? mark_ : it->second;
}

SourceMark MapView::sourceMark(const std::string& key) const {
    return errors_.mark(markOf(key), pathOf(key));
}

// Readers report at the key's mark: that is where a user looks for the entry.

bool readString(const MapView& m, const std::string& key, std::string& out) {
    YAML::Node n = m.get(key);
    if (!n.IsDefined()) return true;
    if (isNullScalar(n)) { out.clear(); return true; }
    if (!n.IsScalar()) {
        m.errors().add(m.markOf(key), m.pathOf(key), "expected a string, got " + describeNode(n));
        return false;
    }
    out = n.Scalar();
    return true;
}

bool readBool(const MapView& m, const std::string& key, bool& out) {
    YAML::Node n = m.get(key);
    if (!n.IsDefined()) return true;
    auto b = asBool(n);
    if (!b) {
        m.errors().add(m.markOf(key), m.pathOf(key), "expected a boolean (true or false), got " + describeNode(n));
        return false;
    }
    out = *b;
    return true;
}

bool readInt(const MapView& m, const std::string& key, int64_t min, int64_t max, int64_t& out) {
    YAML::Node n = m.get(key);
    if (!n.IsDefined()) return true;
    auto v = asInt(n);
    if (!v) {
        std::string msg = "expected an integer, got " + describeNode(n);
        if (n.IsScalar() && isQuoted(n) && looksDecimal(n.Scalar())) msg += " (a quoted string; remove the quotes)";
        else if (n.IsScalar() && !isQuoted(n) && looksDecimal(n.Scalar())) msg = "out of range: " + n.Scalar() + " (expected " + std::to_string(min) + ".." + std::to_string(max) + ")";
        m.errors().add(m.markOf(key), m.pathOf(key), msg);
        return false;
    }
    if (*v < min || *v > max) {
        m.errors().add(m.markOf(key), m.pathOf(key),
                        "out of range: " + std::to_string(*v) + " (expected " + std::to_string(min) + ".." + std::to_string(max) + ")");
        return false;
    }
    out = *v;
    return true;
}

bool readInt(const MapView& m, const std::string& key, int min, int max, int& out) {
    int64_t v = out;
    if (!readInt(m, key, static_cast<int64_t>(min), static_cast<int64_t>(max), v)) return false;
    out = static_cast<int>(v);
    return true;
}

bool readStringList(const MapView& m, const std::string& key, std::vector<std::string>& out,
                    std::vector<YAML::Mark>* marks) {
    YAML::Node n = m.get(key);
    if (!n.IsDefined()) return true;
    if (!n.IsSequence()) {
        m.errors().add(m.markOf(key), m.pathOf(key), "expected a list, got " + describeNode(n));
        return false;
    }
    std::vector<std::string> items;
    std::vector<YAML::Mark> itemMarks;
    bool ok = true;
    size_t i = 0;
    for (auto it = n.begin(); it != n.end(); ++it, ++i) {
        const YAML::Node item = *it;
        // A null item has no useful mark of its own; fall back to the list's key.
        YAML::Mark mk = item.IsNull() ? m.markOf(key) : item.Mark();
        if (isNullScalar(item)) {
            items.emplace_back();
        } else if (!item.IsScalar()) {
            m.errors().add(mk, indexPath(m.pathOf(key), i), "expected a string, got " + describeNode(item));
            ok = false;
            continue;
        } else {
            items.push_back(item.Scalar());
        }
        itemMarks.push_back(mk);
        m.errors().recordMark(indexPath(m.pathOf(key), i), mk);
    }
    if (!ok) {
        m.errors().markFailed(m.pathOf(key));
        return false;
    }
    out = std::move(items);
    if (marks) *marks = std::move(itemMarks);
    return true;
}

}  // namespace sf::config
