// Connection-state recovery (docs/recovery.md): holding a session whose client left
// abnormally, and handing it back to the client when it reconnects with its pid, on
// whichever loop the new connection landed. Socket.IO's own rules on the wire: the
// CONNECT answer carries {sid, pid}; a recovered socket keeps its id.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "common/json.hpp"
#include "delivery/core.hpp"

namespace sf::delivery {
class Session;
}

namespace sf::delivery::recovery {

using Done = std::function<void(bool ok, json::Value data)>;

// Ends after which socket.io keeps a session: all but the client's own namespace
// disconnect, the server's (socket.disconnect(), token expiry, error limit) and shutdown.
bool isAbnormal(const std::string& reason);

// A secret id for a new session (20 url-safe characters, 120 random bits).
std::string newPid();

// The client left abnormally: keep the session (lanes, spill, replay history) for
// maxDisconnectionDurationMs on its loop, then drop it (counted, logged, reported).
void hold(Core& core, const std::shared_ptr<Session>& s, uint64_t confirmedMark);

// The {pid, offset} a reconnecting client's CONNECT auth carries (offset "" when it saw no
// message yet); false without a pid.
bool recoveryAuth(const sio::Socket& s, std::string& pid, std::string& offset);

// Authorised CONNECT whose auth names the pid of a session still known: attach it to s,
// answer CONNECT through done with its old id and pid, replay what the client missed
// after auth.offset, resume its lanes. False when there is nothing to recover (the caller
// starts a fresh session; never an error). Runs on s's loop; may finish later (a session
// held by another loop moves here first).
bool restore(const std::shared_ptr<Core>& core, NamespaceRuntime& ns, const sio::SocketPtr& s, const Done& done);

// The pieces restore and recovery across nodes (recovery_remote.cpp) share, on the
// session's loop. takeOver: the session's previous connection, if still open, loses it
// (DISCONNECT). attach: the client has the session back: CONNECT answered with its pid,
// the history after offset replayed, lanes resumed, counted, logged, reported.
void takeOver(Session& old);
void attach(const std::shared_ptr<Core>& core, const std::shared_ptr<Session>& session, const sio::SocketPtr& s,
            const std::string& offset, const Done& done);

}  // namespace sf::delivery::recovery
