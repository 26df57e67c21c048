#include "net/tls.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <vector>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include "common/log.hpp"
#include "net/file_watch.hpp"

namespace sf::net {

std::string takeOpenSslErrors() {
    std::string out;
    unsigned long e;
    char buf[256];
    while ((e = ERR_get_error()) != 0) {
        ERR_error_string_n(e, buf, sizeof buf);
        if (!out.empty()) out += "; ";
        out += buf;
    }
    return out;
}

namespace {

std::string opensslErrors() {
    std::string out = takeOpenSslErrors();
    return out.empty() ? "unknown OpenSSL error" : out;
}

// One certificate/key pair as served to new handshakes. Immutable once built.
struct Pair {
    X509* cert = nullptr;
    EVP_PKEY* key = nullptr;
    STACK_OF(X509)* chain = nullptr;  // intermediates, may be empty
    std::string cn;
    Pair() = default;
    Pair(const Pair&) = delete;
    Pair& operator=(const Pair&) = delete;
    ~Pair() {
        X509_free(cert);
        EVP_PKEY_free(key);
        if (chain) sk_X509_pop_free(chain, X509_free);
    }
};

std::string readFile(const std::string& path, const char* what) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error(std::string("TLS ") + what + " file '" + path + "': cannot open: " + std::strerror(errno));
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

int passwordCb(char* buf, int size, int /*rwflag*/, void* u) {
    // Never 0-length prompt fallback: with a callback installed OpenSSL does not ask the tty.
    const auto* pw = static_cast<const std::string*>(u);
    if (!pw || pw->empty() || size <= 0) return 0;
    int n = static_cast<int>(std::min<size_t>(pw->size(), static_cast<size_t>(size)));
    std::memcpy(buf, pw->data(), static_cast<size_t>(n));
    return n;
}

std::string subjectCN(X509* cert) {
    char buf[256] = {0};
    int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, sizeof buf);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

using BioPtr = std::unique_ptr<BIO, decltype(&BIO_free)>;

std::shared_ptr<const Pair> loadPair(const std::string& certPath, const std::string& keyPath, const std::string& password) {
    ERR_clear_error();
    auto pair = std::make_shared<Pair>();

    std::string certPem = readFile(certPath, "certificate");
    BioPtr cb(BIO_new_mem_buf(certPem.data(), static_cast<int>(certPem.size())), &BIO_free);
    pair->cert = PEM_read_bio_X509_AUX(cb.get(), nullptr, nullptr, nullptr);
    if (!pair->cert)
        throw std::runtime_error("TLS certificate file '" + certPath + "': no PEM certificate found (" + opensslErrors() + ")");
    // The rest of the file is the chain, leaf first (like SSL_CTX_use_certificate_chain_file).
    pair->chain = sk_X509_new_null();
    for (int i = 2;; ++i) {
        X509* ca = PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr);
        if (!ca) {
            unsigned long e = ERR_peek_last_error();
            if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
                ERR_clear_error();  // normal end of file
                break;
            }
            throw std::runtime_error("TLS certificate file '" + certPath + "': certificate #" + std::to_string(i) +
                                     " is malformed (" + opensslErrors() + ")");
        }
        sk_X509_push(pair->chain, ca);
    }

    std::string keyPem = readFile(keyPath, "private key");
    BioPtr kb(BIO_new_mem_buf(keyPem.data(), static_cast<int>(keyPem.size())), &BIO_free);
    std::string pw = password;
    pair->key = PEM_read_bio_PrivateKey(kb.get(), nullptr, passwordCb, &pw);
    OPENSSL_cleanse(pw.data(), pw.size());
    if (!pair->key) {
        bool encrypted = keyPem.find("ENCRYPTED") != std::string::npos;
        std::string why = encrypted ? (password.empty() ? "the key is encrypted and no password was given"
                                                        : "wrong password for the encrypted key")
                                    : "no PEM private key found";
        throw std::runtime_error("TLS private key file '" + keyPath + "': " + why + " (" + opensslErrors() + ")");
    }
    if (X509_check_private_key(pair->cert, pair->key) != 1) {
        ERR_clear_error();
        throw std::runtime_error("TLS private key file '" + keyPath + "' does not match the certificate in '" + certPath + "'");
    }
    if (X509_cmp_current_time(X509_get0_notAfter(pair->cert)) < 0)
        sf::log::warn("tls_cert_expired", {{"file", certPath}});
    pair->cn = subjectCN(pair->cert);
    return pair;
}

struct FileSig {
    bool ok = false;
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = 0;
    int64_t mtimeNs = 0;
    bool operator==(const FileSig& o) const {
        return ok == o.ok && dev == o.dev && ino == o.ino && size == o.size && mtimeNs == o.mtimeNs;
    }
    bool operator!=(const FileSig& o) const { return !(*this == o); }
};

FileSig statSig(const std::string& path) {
    FileSig s;
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0) return s;  // stat follows symlinks: a swapped link counts
    s.ok = true;
    s.dev = st.st_dev;
    s.ino = st.st_ino;
    s.size = st.st_size;
    s.mtimeNs = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    return s;
}

struct PairSig {
    FileSig cert, key;
    bool operator==(const PairSig& o) const { return cert == o.cert && key == o.key; }
    bool operator!=(const PairSig& o) const { return !(*this == o); }
};

}  // namespace

struct TlsContext::Impl {
    SSL_CTX* ctx = nullptr;
    std::shared_ptr<const Pair> current;  // std::atomic_load/atomic_store only
    std::mutex mu;                        // serialises reloads; guards the fields below
    std::string certPath, keyPath, password;
    PairSig loadedSig;
    std::atomic<uint64_t> reloads{0};
    const char* minProto = "TLSv1.2";

    ~Impl() {
        if (ctx) SSL_CTX_free(ctx);
        OPENSSL_cleanse(password.data(), password.size());
    }

    // Runs inside each handshake (any loop thread): give it the pair current right now.
    static int certCb(SSL* ssl, void* arg) {
        auto* self = static_cast<Impl*>(arg);
        std::shared_ptr<const Pair> p = std::atomic_load(&self->current);
        if (!p) return 0;
        if (SSL_use_certificate(ssl, p->cert) != 1) return 0;
        if (SSL_use_PrivateKey(ssl, p->key) != 1) return 0;
        if (SSL_set1_chain(ssl, p->chain) != 1) return 0;
        return 1;
    }

    bool reloadLocked(const std::string& cert, const std::string& key, const std::string& pw, std::string& error) {
        PairSig sig{statSig(cert), statSig(key)};
        try {
            auto pair = loadPair(cert, key, pw);
            std::atomic_store(&current, pair);
            certPath = cert;
            keyPath = key;
            if (&pw != &password) {
                OPENSSL_cleanse(password.data(), password.size());
                password = pw;
            }
            loadedSig = sig;
            reloads.fetch_add(1);
            sf::log::info("tls_cert_reloaded", {{"cert", cert}, {"cn", pair->cn}});
            return true;
        } catch (const std::exception& e) {
            error = e.what();
            sf::log::error("tls_cert_reload_failed", {{"cert", cert}, {"key", key}, {"error", error}});
            return false;
        }
    }

    // One check of watchFiles() on the watch thread: `seen` is the file state last acted on,
    // `candidate` a changed state waiting to stay unchanged for one interval. After an
    // inotify report (fromEvent) the writers have finished, so a change is acted on at once.
    struct WatchState {
        PairSig seen, candidate;
    };
    void check(bool fromEvent, WatchState& ws) {
        std::string cert, key;
        PairSig loaded;
        {
            std::lock_guard<std::mutex> g(mu);
            cert = certPath;
            key = keyPath;
            loaded = loadedSig;
        }
        PairSig now{statSig(cert), statSig(key)};
        if (now == ws.seen || now == loaded) {
            ws.seen = now;
            ws.candidate = now;
        } else if (fromEvent || now == ws.candidate) {
            ws.seen = now;  // act once per change, also when it fails
            ws.candidate = now;
            std::string err;
            std::lock_guard<std::mutex> g(mu);
            reloadLocked(certPath, keyPath, password, err);
        } else {
            ws.candidate = now;  // changed: wait one more interval for writers to finish
        }
    }

    std::mutex watchMu;               // guards watch
    std::unique_ptr<FileWatch> watch;  // its thread calls check(); reset() joins it
};

TlsContext::TlsContext(const std::string& certChainPemPath, const std::string& privateKeyPemPath,
                       const std::string& privateKeyPassword, const std::string& minProtocol)
    : impl_(std::make_shared<Impl>()) {
    int minVersion;
    if (minProtocol == "TLSv1.2" || minProtocol == "1.2") {
        minVersion = TLS1_2_VERSION;
        impl_->minProto = "TLSv1.2";
    } else if (minProtocol == "TLSv1.3" || minProtocol == "1.3") {
        minVersion = TLS1_3_VERSION;
        impl_->minProto = "TLSv1.3";
    } else {
        throw std::runtime_error("TLS minimum protocol '" + minProtocol + "' is not supported (use TLSv1.2 or TLSv1.3)");
    }
    auto pair = loadPair(certChainPemPath, privateKeyPemPath, privateKeyPassword);
    impl_->ctx = SSL_CTX_new(TLS_server_method());
    if (!impl_->ctx) throw std::runtime_error("TLS: SSL_CTX_new failed: " + opensslErrors());
    SSL_CTX_set_min_proto_version(impl_->ctx, minVersion);
    SSL_CTX_set_options(impl_->ctx, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION);
    // Idle connections give their 2×~34 KB record buffers back: matters at 10k+ sockets.
    SSL_CTX_set_mode(impl_->ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_cert_cb(impl_->ctx, &Impl::certCb, impl_.get());
    impl_->certPath = certChainPemPath;
    impl_->keyPath = privateKeyPemPath;
    impl_->password = privateKeyPassword;
    impl_->loadedSig = PairSig{statSig(certChainPemPath), statSig(privateKeyPemPath)};
    std::atomic_store(&impl_->current, pair);
    sf::log::info("tls_cert_loaded", {{"cert", certChainPemPath}, {"cn", pair->cn}, {"min_protocol", impl_->minProto}});
}

TlsContext::~TlsContext() { stopWatching(); }

bool TlsContext::reload(std::string& error) {
    std::lock_guard<std::mutex> g(impl_->mu);
    return impl_->reloadLocked(impl_->certPath, impl_->keyPath, impl_->password, error);
}

bool TlsContext::reload(const std::string& certChainPemPath, const std::string& privateKeyPemPath,
                        const std::string& privateKeyPassword, std::string& error) {
    std::lock_guard<std::mutex> g(impl_->mu);
    return impl_->reloadLocked(certChainPemPath, privateKeyPemPath, privateKeyPassword, error);
}

void TlsContext::watchFiles(uint64_t intervalMs) {
    std::lock_guard<std::mutex> g(impl_->watchMu);
    impl_->watch.reset();  // the previous watch (if any) is stopped first
    auto ws = std::make_shared<Impl::WatchState>();
    std::vector<std::string> paths;
    {
        std::lock_guard<std::mutex> g2(impl_->mu);
        ws->seen = ws->candidate = impl_->loadedSig;
        paths = {impl_->certPath, impl_->keyPath};
    }
    Impl* self = impl_.get();  // outlives the watch: ~TlsContext stops it first
    impl_->watch = std::make_unique<FileWatch>(paths, intervalMs, std::min<uint64_t>(intervalMs, 50),
                                               [self, ws](bool fromEvent) { self->check(fromEvent, *ws); });
}

void TlsContext::stopWatching() {
    std::lock_guard<std::mutex> g(impl_->watchMu);
    impl_->watch.reset();
}

std::string TlsContext::currentSubjectCN() const {
    auto p = std::atomic_load(&impl_->current);
    return p ? p->cn : std::string();
}

uint64_t TlsContext::reloadCount() const { return impl_->reloads.load(); }

const char* TlsContext::minProtocol() const { return impl_->minProto; }

ssl_ctx_st* TlsContext::sslCtx() const { return impl_->ctx; }

}  // namespace sf::net
