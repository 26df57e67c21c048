#include "cluster/cluster_wire.hpp"

namespace sf::cluster {

std::string escapeComponent(const std::string& s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        if (c == '%') out += "%25";
        else if (c == ':') out += "%3A";
        else out.push_back(c);
    }
    return out;
}

std::string ClusterKeys::topicChannel(const std::string& ns, const std::string& topic) const {
    return prefix + ":ch:" + escapeComponent(server) + ":" + escapeComponent(ns) + ":" + escapeComponent(topic);
}
std::string ClusterKeys::topicStream(const std::string& ns, const std::string& topic) const {
    return prefix + ":st:" + escapeComponent(server) + ":" + escapeComponent(ns) + ":" + escapeComponent(topic);
}
std::string ClusterKeys::nodeChannel(const std::string& nodeId) const {
    return prefix + ":node:" + escapeComponent(server) + ":" + escapeComponent(nodeId);
}
std::string ClusterKeys::nodesKey() const { return prefix + ":nodes:" + escapeComponent(server); }
std::string ClusterKeys::clientsKey(const std::string& nodeId) const {
    return prefix + ":clients:" + escapeComponent(server) + ":" + escapeComponent(nodeId);
}
std::string ClusterKeys::sessionKey(const std::string& pid) const {
    return prefix + ":sess:" + escapeComponent(server) + ":" + escapeComponent(pid);
}
std::string ClusterKeys::clientField(const std::string& ns, const std::string& clientId) {
    return encodeRecord({ns, clientId});
}

std::string encodeRecord(const std::vector<std::string>& fields) {
    size_t n = 0;
    for (auto& f : fields) n += f.size() + 12;
    std::string out;
    out.reserve(n);
    for (auto& f : fields) {
        out += std::to_string(f.size());
        out.push_back(':');
        out += f;
    }
    return out;
}

std::optional<std::vector<std::string>> decodeRecord(const std::string& data, size_t maxFields) {
    std::vector<std::string> out;
    size_t i = 0;
    while (i < data.size()) {
        size_t len = 0, digits = 0;
        while (i < data.size() && data[i] >= '0' && data[i] <= '9') {
            if (++digits > 10) return std::nullopt;
            len = len * 10 + static_cast<size_t>(data[i] - '0');
            ++i;
        }
        if (digits == 0 || i >= data.size() || data[i] != ':') return std::nullopt;
        // One spelling per record, as encodeRecord writes it: "01:" is not a length.
        if (digits > 1 && data[i - digits] == '0') return std::nullopt;
        ++i;
        if (len > data.size() - i) return std::nullopt;
        out.emplace_back(data, i, len);
        i += len;
        if (out.size() > maxFields) return std::nullopt;
    }
    return out;
}

}  // namespace sf::cluster
