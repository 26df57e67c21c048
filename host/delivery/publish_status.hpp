// What a publish was told. Every refusal is one the publisher can act on
// (docs/message-path.md): nothing accepted is lost, nothing refused is silent.
#pragma once

namespace sf::delivery {

enum class PublishStatus {
    Ok,                // in the topic's bounded log: every lane will get it under its policy
    UnknownNamespace,
    UnknownTopic,
    UnknownClient,     // publishTo: no such socket id in the namespace
    NotSubscribed,     // publishTo: the client is not subscribed to the topic
    InvalidPayload,    // not valid JSON
    Overloaded,        // the topic's log (or the loop's publishTo hand-off) is full: retry later
    Stopping,          // the server is shutting down
    ClusterUnavailable,  // cluster mode: the other nodes cannot be reached (docs/cluster.md)
};
const char* toString(PublishStatus s);

}  // namespace sf::delivery
