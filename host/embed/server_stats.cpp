#include "embed/server_stats.hpp"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <memory>

namespace sf {
namespace {

uint64_t wallMs() {
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

std::string nameText(X509_NAME* n) {
    if (!n) return "";
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    if (!bio || X509_NAME_print_ex(bio.get(), n, 0, XN_FLAG_RFC2253) < 0) return "";
    char* data = nullptr;
    long len = BIO_get_mem_data(bio.get(), &data);
    return len > 0 ? std::string(data, static_cast<size_t>(len)) : "";
}

}  // namespace

admin::TlsInfo readCertificateInfo(const std::string& pemPath) {
    admin::TlsInfo t;
    t.enabled = true;
    t.certFile = pemPath;
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_file(pemPath.c_str(), "r"), BIO_free);
    if (!bio) {
        t.error = "cannot open " + pemPath;
        return t;
    }
    std::unique_ptr<X509, decltype(&X509_free)> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), X509_free);
    if (!cert) {
        t.error = "no PEM certificate in " + pemPath;
        return t;
    }
    t.subject = nameText(X509_get_subject_name(cert.get()));
    t.issuer = nameText(X509_get_issuer_name(cert.get()));
    std::tm tm{};
    if (ASN1_TIME_to_tm(X509_get0_notAfter(cert.get()), &tm) == 1) {
        char buf[32];
        std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
        t.notAfter = buf;
        t.secondsLeft = static_cast<int64_t>(timegm(&tm)) - static_cast<int64_t>(std::time(nullptr));
    }
    return t;
}

admin::StatsSnapshot buildServerStats(const config::ServerConfig& server, delivery::Metrics& metrics,
                                      const delivery::Delivery& delivery, const plugins::Registry& registry,
                                      uint64_t uptimeMs) {
    admin::StatsSnapshot s;
    s.server = server.name;
    s.version = SF_VERSION;
    s.takenAtMs = wallMs();
    s.uptimeMs = uptimeMs;
    const auto t0 = std::chrono::steady_clock::now();
    s.delivery = delivery.collectStats();
    s.collectMs = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count());

    for (auto& ns : server.namespaces) {
        delivery::Metrics::NamespaceCounters& n = metrics.ns(ns.path);
        admin::NamespaceCounters c;
        c.ns = ns.path;
        c.active = n.active.load(std::memory_order_relaxed);
        c.connections = n.connections.load(std::memory_order_relaxed);
        c.disconnections = n.disconnections.load(std::memory_order_relaxed);
        c.authRejected = n.authRejected.load(std::memory_order_relaxed);
        c.authRateLimited = n.authRateLimited.load(std::memory_order_relaxed);
        c.errorLimited = n.errorLimited.load(std::memory_order_relaxed);
        s.namespaces.push_back(std::move(c));
        for (auto& topic : ns.topics) {
            delivery::Metrics::TopicCounters& t = metrics.topic(ns.path, topic);
            admin::TopicCounters c2;
            c2.ns = ns.path;
            c2.topic = topic;
            c2.deliveryMode = ns.deliveryMode == config::DeliveryMode::AT_LEAST_ONCE ? "AT_LEAST_ONCE" : "BEST_EFFORT";
            c2.overflowAction = ns.overflowAction;
            if (ns.overflowAction == "SPILL_TO_DISK") c2.spillBackend = ns.spillBackend;
            c2.published = t.published.load(std::memory_order_relaxed);
            c2.publishedBytes = t.publishedBytes.load(std::memory_order_relaxed);
            c2.received = t.received.load(std::memory_order_relaxed);
            c2.retries = t.retries.load(std::memory_order_relaxed);
            c2.retriesExhausted = t.retriesExhausted.load(std::memory_order_relaxed);
            c2.dropped = t.dropped.load(std::memory_order_relaxed);
            c2.coalesced = t.coalesced.load(std::memory_order_relaxed);
            c2.spilled = t.spilled.load(std::memory_order_relaxed);
            c2.publishRefused = t.publishRefused.load(std::memory_order_relaxed);
            c2.inFlight = std::max<int64_t>(0, t.inflight.load(std::memory_order_relaxed));
            s.topics.push_back(std::move(c2));
        }
    }
    // Overflow reasons are only known to the metrics map: take them from its snapshot.
    for (const MetricSample& m : metrics.snapshot()) {
        if (m.name != "streamfence_queue_overflow_total") continue;
        std::string ns, topic, reason;
        for (auto& [k, v] : m.labels) {
            if (k == "namespace") ns = v;
            else if (k == "topic") topic = v;
            else if (k == "reason") reason = v;
        }
        if (reason.empty()) continue;
        for (auto& t : s.topics)
            if (t.ns == ns && t.topic == topic) t.overflowByReason[reason] = static_cast<uint64_t>(m.value);
    }

    for (auto& p : registry.plugins())
        s.plugins.push_back({p.name, plugins::kindName(p.kind), p.version, p.file, p.abiVersion, p.abiMinor});
    for (auto& r : registry.refusals()) s.refusedPlugins.push_back({r.file, r.reason});
    if (server.tls) s.tls = readCertificateInfo(server.tls->certChainPemPath);
    return s;
}

}  // namespace sf
