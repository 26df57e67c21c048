// Builds the dashboard snapshot of one running server (admin::StatsSnapshot) from its
// layers: metrics counters, the loops' lanes (Delivery::collectStats), plugins, TLS file.
#pragma once
#include <cstdint>

#include "admin/stats_snapshot.hpp"
#include "config/config.hpp"
#include "delivery/delivery.hpp"
#include "plugins/registry.hpp"

namespace sf {

admin::StatsSnapshot buildServerStats(const config::ServerConfig& server, delivery::Metrics& metrics,
                                      const delivery::Delivery& delivery, const plugins::Registry& registry,
                                      uint64_t uptimeMs);

// Subject, issuer and expiry of the first certificate in a PEM file (error set when unreadable).
admin::TlsInfo readCertificateInfo(const std::string& pemPath);

}  // namespace sf
