// Append-only log of store mutations in --data DIR.
//
// File "hpkv.log": 8-byte magic, then records
//   u32 crc32(type..value) | u8 type (1 put, 2 delete) | u32 keyLen | u32 valueLen | key | value
// (little endian). Every record is written with one write(2) before the request
// is answered, so a kill -9 never loses an acknowledged write; --fsync adds an
// fdatasync per record for power-loss durability. At start the log is replayed
// and a torn or corrupt tail is cut off. When the file is much larger than the
// live data it is rewritten (temp file + fsync + rename).
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>

namespace hpkv {

class Persistence {
public:
    struct Options {
        std::string dir;
        bool fsyncEachWrite = false;
        std::uint64_t compactMinBytes = 8u << 20;  // never compact below this size
    };
    struct ReplayStats {
        std::uint64_t records = 0;
        std::uint64_t droppedTailBytes = 0;
    };

    explicit Persistence(Options opts);
    ~Persistence();
    Persistence(const Persistence&) = delete;
    Persistence& operator=(const Persistence&) = delete;

    // Opens (creating if needed) and replays the log into `data`. Throws on I/O errors.
    ReplayStats open(std::map<std::string, std::string>& data);

    // Durably appends one record (see file comment). False on I/O error; the
    // file is then rolled back to its previous length so the log stays parseable.
    bool appendPut(const std::string& key, const std::string& value);
    bool appendDelete(const std::string& key);

    // Rewrites the log from `data` if the file is at least compactMinBytes and
    // more than twice the live size. Returns true if it compacted.
    bool maybeCompact(const std::map<std::string, std::string>& data, std::uint64_t liveBytes);

    static std::uint64_t recordSize(std::size_t keyLen, std::size_t valueLen) { return 13 + keyLen + valueLen; }
    std::uint64_t fileSize() const { return size_; }

private:
    bool append(std::uint8_t type, const std::string& key, const std::string& value);
    void compact(const std::map<std::string, std::string>& data);

    Options opts_;
    std::string path_;
    int fd_ = -1;
    std::uint64_t size_ = 0;
};

}  // namespace hpkv
