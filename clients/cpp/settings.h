// What the journey is given: the stack's addresses, the bootstrap admin and the amounts,
// all from the environment (the contract of tests/polyglot/conftest.py).
#pragma once

#include <cstdint>
#include <string>

namespace journey {

struct Settings {
  std::string identity_addr;
  std::string wallet_addr;
  std::string catalogue_addr;
  std::string nats_url;
  std::string admin_email;
  std::string admin_password;
  std::int64_t top_up_minor = 0;
  std::int64_t transfer_minor = 0;
};

// Reads SUPERAPP_*; throws std::runtime_error naming every variable missing or malformed.
Settings ReadSettings();

}  // namespace journey
