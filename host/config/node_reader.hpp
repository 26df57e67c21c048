// Typed, mark-keeping access to parsed YAML nodes for the schema walk. Every read that
// fails records "file:line:col: keypath: message" in Errors and leaves the target as is
// (the default), so the walk carries on and reports everything in one go.
#pragma once
#include "config/config.hpp"

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace sf::config {

// Parse-pass state: the errors so far, where every key path was written (for the later
// validation pass, which only sees plain structs) and which key paths already failed
// (so validation does not pile a second message onto a value that was unreadable).
class Errors {
public:
    explicit Errors(std::string file) : file_(std::move(file)) {}
    const std::string& file() const { return file_; }
    SourceMark mark(const YAML::Mark& m, const std::string& keyPath) const;
    void add(const YAML::Mark& m, const std::string& keyPath, const std::string& message);
    void add(const SourceMark& m, const std::string& message);
    void addAll(const std::vector<std::string>& messages) { list_.insert(list_.end(), messages.begin(), messages.end()); }
    const std::vector<std::string>& list() const { return list_; }

    void recordMark(const std::string& keyPath, const YAML::Mark& m) { marks_.emplace(keyPath, mark(m, keyPath)); }
    void markFailed(const std::string& keyPath) { failed_.insert(keyPath); }
    const std::map<std::string, SourceMark>& marks() const { return marks_; }
    const std::set<std::string>& failed() const { return failed_; }

private:
    std::string file_;
    std::vector<std::string> list_;
    std::map<std::string, SourceMark> marks_;
    std::set<std::string> failed_;
};

std::string childPath(const std::string& parent, const std::string& key);
std::string indexPath(const std::string& parent, size_t index);

// One mapping node: checks for duplicate and unknown keys up front (with a
// "did you mean" hint), then hands out values by key.
class MapView {
public:
    // node must be a map (or null/absent, giving an empty view); otherwise an error is recorded.
    MapView(Errors& errors, const YAML::Node& node, const YAML::Mark& fallback, std::string path,
            const std::vector<std::string>& allowedKeys);
    // Any keys allowed (e.g. servers: name -> server); still rejects duplicates.
    MapView(Errors& errors, const YAML::Node& node, const YAML::Mark& fallback, std::string path);

    bool ok() const { return ok_; }
    const std::string& path() const { return path_; }
    const YAML::Mark& mark() const { return mark_; }
    bool has(const std::string& key) const { return values_.count(key) != 0; }
    YAML::Node get(const std::string& key) const;  // invalid (!IsDefined) when absent
    // The key's mark when present; the map's own mark otherwise (for "missing"/defaulted values).
    YAML::Mark markOf(const std::string& key) const;
    SourceMark sourceMark(const std::string& key) const;
    std::string pathOf(const std::string& key) const { return childPath(path_, key); }
    const std::vector<std::string>& keys() const { return order_; }
    Errors& errors() const { return errors_; }

private:
    void collect(const YAML::Node& node, const std::vector<std::string>* allowed);

    Errors& errors_;
    std::string path_;
    YAML::Mark mark_;
    bool ok_ = true;
    std::vector<std::string> order_;
    std::map<std::string, YAML::Node> values_;
    std::map<std::string, YAML::Mark> keyMarks_;
};

// Scalar readers for map entries. They return false (and record an error) on a bad value;
// an absent key returns true and leaves out untouched.
bool readString(const MapView& m, const std::string& key, std::string& out);
bool readBool(const MapView& m, const std::string& key, bool& out);
bool readInt(const MapView& m, const std::string& key, int64_t min, int64_t max, int64_t& out);
bool readInt(const MapView& m, const std::string& key, int min, int max, int& out);
// A list of strings (each item a scalar); marks[i] is the item's mark.
bool readStringList(const MapView& m, const std::string& key, std::vector<std::string>& out,
                    std::vector<YAML::Mark>* marks = nullptr);

// What a node is, for "expected X, got Y" messages: `"abc"`, `a map`, `a list`, `nothing`.
std::string describeNode(const YAML::Node& n);
// True for a scalar written in quotes (or tagged !!str): a string even if it looks like a number.
bool isQuoted(const YAML::Node& n);
// Plain-scalar interpretation per YAML 1.2 core schema.
bool isNullScalar(const YAML::Node& n);
std::optional<bool> asBool(const YAML::Node& n);
std::optional<int64_t> asInt(const YAML::Node& n);

}  // namespace sf::config
