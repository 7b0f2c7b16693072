// The journey's report: the keys check_journey (tests/polyglot/conftest.py) reads,
// printed as one JSON line.
#pragma once

#include <cstdint>
#include <string>

#include "identity_events.h"
#include "rpc_errors.h"

namespace journey {

struct Report {
  std::string user_id;
  std::string email;
  std::string login_user_id;
  std::string read_email;
  std::string payee_id;
  std::int64_t balance_after_top_up_minor = 0;
  std::int64_t balance_after_transfer_minor = 0;
  std::int64_t search_results = 0;
  ErrorReport error;
  EventReport event;
};

// The report as one line of JSON.
std::string ToJson(const Report& report);

}  // namespace journey
