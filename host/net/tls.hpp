// Server-side TLS configuration on top of OpenSSL (Poco 1.11's non-blocking TLS sockets are
// broken, fixed only in Poco 1.14: connections encrypt through memory BIOs on their loop). The certificate/key pair is not installed on the SSL_CTX: a cert
// callback hands each new handshake the pair current at that moment, so reload() is an
// atomic pointer swap and a bad pair never replaces a good one.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

struct ssl_ctx_st;  // SSL_CTX, without pulling OpenSSL headers into every includer

namespace sf::net {

// Drains OpenSSL's error queue of this thread into one "a; b" line ("" when empty).
std::string takeOpenSslErrors();

class TlsContext {
public:
    // Loads and verifies the pair (leaf + chain from certChainPemPath, key matching the
    // leaf; privateKeyPassword for an encrypted key, "" for none). minProtocol is
    // "TLSv1.2" or "TLSv1.3". Throws std::runtime_error naming the file on failure.
    TlsContext(const std::string& certChainPemPath, const std::string& privateKeyPemPath,
               const std::string& privateKeyPassword = "", const std::string& minProtocol = "TLSv1.2");
    ~TlsContext();
    TlsContext(const TlsContext&) = delete;
    TlsContext& operator=(const TlsContext&) = delete;

    // Thread-safe. Re-reads the configured files; on success new handshakes get the new
    // pair (open connections are untouched). On failure the old pair keeps serving,
    // `error` says why (also logged) and false is returned.
    bool reload(std::string& error);
    // Same, from other files (they become the configured paths on success).
    bool reload(const std::string& certChainPemPath, const std::string& privateKeyPemPath,
                const std::string& privateKeyPassword, std::string& error);

    // Thread-safe. Watches both files from a thread of its own (net/file_watch.hpp): after
    // inotify reports a change in their directories, and every intervalMs regardless, it
    // compares mtime/size/inode; on the interval path a change must stay unchanged for one
    // interval (so a cert written before its key is not loaded half-way). The new pair is
    // loaded on that thread, never on an event loop. A failed reload is retried only after
    // the files change again. Calling it again replaces the previous watch.
    void watchFiles(uint64_t intervalMs);
    void stopWatching();  // thread-safe; returns once the watch thread has ended

    std::string currentSubjectCN() const;  // CN of the leaf new handshakes get
    uint64_t reloadCount() const;          // successful reloads since construction
    const char* minProtocol() const;       // "TLSv1.2" / "TLSv1.3"

    ssl_ctx_st* sslCtx() const;  // for TlsConnection; owned by this object

    struct Impl;

private:
    std::shared_ptr<Impl> impl_;  // shared so the file-watch timer can hold a weak_ptr
};

}  // namespace sf::net
