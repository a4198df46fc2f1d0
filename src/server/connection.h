// Whether the client of a request still holds its connection, for handlers that wait on the
// engine before writing anything (non-streamed answers). cpp-httplib 0.11 (Debian 12's) hands a
// handler no way to see its socket, and a write is the only way it notices a peer that left; a
// stream's pings find that out, a whole answer would only at its end. So the watch finds the
// socket once among this process's own descriptors by the two addresses the request names (local
// and remote address and port: one TCP connection), and then polls it without blocking: a peer
// that closed or reset shows as hang-up or as a readable socket with nothing to read.
#pragma once

#include <string>

namespace bringup::server {

class ConnectionWatch {
 public:
  ConnectionWatch(const std::string& local_addr, int local_port, const std::string& remote_addr,
                  int remote_port);
  // False when the socket was not found (then closed() is always false).
  bool found() const { return fd_ >= 0; }
  // True once the client closed or reset the connection.
  bool closed() const;

 private:
  int fd_ = -1;  // httplib's; valid while its handler runs, never closed here
};

}  // namespace bringup::server
