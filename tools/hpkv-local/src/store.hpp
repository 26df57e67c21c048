// The key-value store: an ordered std::map (RANGE needs byte order) behind one
// mutex. Every mutation is logged (Persistence) before it is applied and before
// the caller answers, and change listeners run under the same lock so that
// notifications for a key go out in the order the writes were applied.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace hpkv {

class Persistence;

enum class Status {
    Ok,
    NotFound,
    NotNumeric,   // ATOMIC on a value that is not a decimal int64
    Overflow,     // ATOMIC result outside int64
    TooLarge,     // PATCH result larger than the value limit
    IoError,      // the log write failed; nothing was changed
};

class Store {
public:
    // value == nullptr means the key was deleted.
    using ChangeListener = std::function<void(const std::string& key, const std::string* value)>;

    Store(std::unique_ptr<Persistence> persistence, std::size_t maxValueBytes);
    ~Store();

    // Loads persisted data (if any). Returns number of replayed records.
    std::uint64_t load();
    std::size_t size() const;

    void setChangeListener(ChangeListener l) { listener_ = std::move(l); }

    std::optional<std::string> get(const std::string& key) const;
    Status set(const std::string& key, const std::string& value);
    Status patch(const std::string& key, const std::string& value);
    Status remove(const std::string& key);
    Status increment(const std::string& key, std::int64_t delta, std::int64_t& newValue);

    struct RangeResult {
        std::vector<std::pair<std::string, std::string>> records;
        bool truncated = false;
    };
    // Inclusive [start, end] (end == nullopt: to the end of the key space), at
    // most `limit` records and roughly `maxBytes` of payload; `accept` filters keys.
    RangeResult range(const std::string& start, const std::optional<std::string>& end, std::size_t limit,
                      std::size_t maxBytes, const std::function<bool(const std::string&)>& accept) const;

private:
    Status writeLocked(const std::string& key, std::string value);
    void afterWriteLocked();

    mutable std::mutex mu_;
    std::map<std::string, std::string> data_;
    std::uint64_t liveBytes_ = 0;  // sum of log record sizes of live entries
    std::unique_ptr<Persistence> log_;
    std::size_t maxValueBytes_;
    ChangeListener listener_;
};

}  // namespace hpkv
