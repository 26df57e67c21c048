#include "persistence.hpp"

#include "common/log.hpp"

#include <Poco/Checksum.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace hpkv {
namespace {

constexpr char kMagic[8] = {'H', 'P', 'K', 'V', 'L', 'O', 'G', '1'};
constexpr std::uint8_t kPut = 1;
constexpr std::uint8_t kDelete = 2;

void putU32(std::string& out, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
std::uint32_t getU32(const char* p) {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(static_cast<unsigned char>(p[i])) << (8 * i);
    return v;
}

std::string encode(std::uint8_t type, const std::string& key, const std::string& value) {
    std::string body;
    body.reserve(9 + key.size() + value.size());
    body.push_back(static_cast<char>(type));
    putU32(body, static_cast<std::uint32_t>(key.size()));
    putU32(body, static_cast<std::uint32_t>(value.size()));
    body.append(key).append(value);
    Poco::Checksum crc(Poco::Checksum::TYPE_CRC32);
    crc.update(body.data(), static_cast<unsigned>(body.size()));
    std::string rec;
    rec.reserve(4 + body.size());
    putU32(rec, crc.checksum());
    rec.append(body);
    return rec;
}

bool writeAll(int fd, const char* p, std::size_t n) {
    while (n > 0) {
        ssize_t w = ::write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        p += w;
        n -= static_cast<std::size_t>(w);
    }
    return true;
}

std::string errnoText() { return std::strerror(errno); }

void fsyncDir(const std::string& dir) {
    int d = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (d >= 0) {
        ::fsync(d);
        ::close(d);
    }
}

}  // namespace

Persistence::Persistence(Options opts) : opts_(std::move(opts)), path_(opts_.dir + "/hpkv.log") {}

Persistence::~Persistence() {
    if (fd_ >= 0) ::close(fd_);
}

Persistence::ReplayStats Persistence::open(std::map<std::string, std::string>& data) {
    if (::mkdir(opts_.dir.c_str(), 0755) != 0 && errno != EEXIST)
        throw std::runtime_error("cannot create data dir " + opts_.dir + ": " + errnoText());
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw std::runtime_error("cannot open " + path_ + ": " + errnoText());

    std::string buf;
    {
        struct stat st{};
        if (::fstat(fd_, &st) != 0) throw std::runtime_error("fstat " + path_ + ": " + errnoText());
        buf.resize(static_cast<std::size_t>(st.st_size));
        std::size_t got = 0;
        while (got < buf.size()) {
            ssize_t r = ::pread(fd_, &buf[got], buf.size() - got, static_cast<off_t>(got));
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) throw std::runtime_error("read " + path_ + ": " + errnoText());
            got += static_cast<std::size_t>(r);
        }
    }

    ReplayStats stats;
    std::size_t pos = 0;
    if (buf.size() < sizeof kMagic) {
        // New (or torn-while-created) file: start fresh with just the header.
        if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, kMagic, sizeof kMagic, 0) != static_cast<ssize_t>(sizeof kMagic))
            throw std::runtime_error("cannot initialise " + path_ + ": " + errnoText());
        ::fsync(fd_);
        fsyncDir(opts_.dir);
        pos = sizeof kMagic;
        buf.assign(kMagic, sizeof kMagic);
    } else {
        if (std::memcmp(buf.data(), kMagic, sizeof kMagic) != 0)
            throw std::runtime_error(path_ + " is not an hpkv-local log (bad magic)");
        pos = sizeof kMagic;
        while (pos + 13 <= buf.size()) {
            const char* p = buf.data() + pos;
            std::uint32_t crc = getU32(p);
            std::uint8_t type = static_cast<std::uint8_t>(p[4]);
            std::uint64_t klen = getU32(p + 5), vlen = getU32(p + 9);
            std::uint64_t total = 13 + klen + vlen;
            if (pos + total > buf.size()) break;  // torn tail
            Poco::Checksum c(Poco::Checksum::TYPE_CRC32);
            c.update(p + 4, static_cast<unsigned>(total - 4));
            if (c.checksum() != crc || (type != kPut && type != kDelete)) break;
            std::string key(p + 13, klen);
            if (type == kPut) data[std::move(key)] = std::string(p + 13 + klen, vlen);
            else data.erase(key);
            ++stats.records;
            pos += total;
        }
        if (pos < buf.size()) {
            // Whatever follows the last valid record was never acknowledged
            // (a write cut short by a crash) or is damaged; drop it so new
            // records are appended after valid data.
            stats.droppedTailBytes = buf.size() - pos;
            sf::log::warn("log_tail_dropped", {{"path", path_}, {"bytes", std::to_string(stats.droppedTailBytes)},
                                               {"offset", std::to_string(pos)}});
            if (::ftruncate(fd_, static_cast<off_t>(pos)) != 0)
                throw std::runtime_error("cannot truncate " + path_ + ": " + errnoText());
            ::fsync(fd_);
        }
    }
    size_ = pos;
    if (::lseek(fd_, static_cast<off_t>(size_), SEEK_SET) < 0) throw std::runtime_error("lseek: " + errnoText());
    return stats;
}

bool Persistence::append(std::uint8_t type, const std::string& key, const std::string& value) {
    if (fd_ < 0) return false;
    std::string rec = encode(type, key, value);
    bool ok = writeAll(fd_, rec.data(), rec.size());
    if (ok && opts_.fsyncEachWrite) ok = ::fdatasync(fd_) == 0;
    if (!ok) {
        sf::log::error("log_write_failed", {{"path", path_}, {"error", errnoText()}});
        // Roll back a partial record, otherwise later records would sit behind
        // garbage and be lost at the next replay.
        if (::ftruncate(fd_, static_cast<off_t>(size_)) != 0 || ::lseek(fd_, static_cast<off_t>(size_), SEEK_SET) < 0)
            sf::log::error("log_rollback_failed", {{"path", path_}, {"error", errnoText()}});
        return false;
    }
    size_ += rec.size();
    return true;
}

bool Persistence::appendPut(const std::string& key, const std::string& value) { return append(kPut, key, value); }
bool Persistence::appendDelete(const std::string& key) { return append(kDelete, key, std::string()); }

bool Persistence::maybeCompact(const std::map<std::string, std::string>& data, std::uint64_t liveBytes) {
    if (fd_ < 0 || size_ < opts_.compactMinBytes || size_ <= 2 * (liveBytes + sizeof kMagic)) return false;
    try {
        compact(data);
        return true;
    } catch (const std::exception& e) {
        // The old log is still intact and in use; compaction is retried on a later write.
        sf::log::error("log_compact_failed", {{"path", path_}, {"error", e.what()}});
        return false;
    }
}

void Persistence::compact(const std::map<std::string, std::string>& data) {
    const std::uint64_t before = size_;
    const std::string tmp = path_ + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw std::runtime_error("open " + tmp + ": " + errnoText());
    std::uint64_t written = 0;
    std::string chunk(kMagic, sizeof kMagic);
    bool ok = true;
    for (const auto& [k, v] : data) {
        chunk += encode(kPut, k, v);
        if (chunk.size() >= (1u << 20)) {
            ok = ok && writeAll(fd, chunk.data(), chunk.size());
            written += chunk.size();
            chunk.clear();
        }
    }
    ok = ok && writeAll(fd, chunk.data(), chunk.size());
    written += chunk.size();
    // The new file must be on disk before it replaces the old one.
    ok = ok && ::fsync(fd) == 0;
    ::close(fd);
    if (!ok || ::rename(tmp.c_str(), path_.c_str()) != 0) {
        std::string err = errnoText();
        ::unlink(tmp.c_str());
        throw std::runtime_error("write " + tmp + ": " + err);
    }
    fsyncDir(opts_.dir);
    int nfd = ::open(path_.c_str(), O_RDWR | O_CLOEXEC);
    if (nfd < 0 || ::lseek(nfd, 0, SEEK_END) < 0) {
        // Cannot happen short of the dir vanishing; keep appending to the old
        // (now unlinked) file would lose data, so fail loudly instead.
        sf::log::error("log_reopen_failed", {{"path", path_}, {"error", errnoText()}});
        std::abort();
    }
    ::close(fd_);
    fd_ = nfd;
    size_ = written;
    sf::log::info("log_compacted", {{"path", path_}, {"before", std::to_string(before)}, {"after", std::to_string(written)},
                                    {"records", std::to_string(data.size())}});
}

}  // namespace hpkv
