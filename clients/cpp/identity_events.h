// identity's UserRegistered, read back from JetStream with the NATS C client and decoded
// with the generated C++ message.
#pragma once

#include <chrono>
#include <string>

namespace journey {

// The UserRegistered the journey read back.
struct EventReport {
  std::string subject;  // as the superapp.events.v1.subject option names it
  std::string user_id;
  std::string email;
};

// Reads stream SUPERAPP_IDENTITY from its start until the UserRegistered of user_id
// arrives; throws std::runtime_error if it does not by the deadline.
EventReport AwaitUserRegistered(const std::string& nats_url, const std::string& user_id,
                                std::chrono::system_clock::time_point deadline);

}  // namespace journey
