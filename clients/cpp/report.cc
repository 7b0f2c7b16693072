#include "report.h"

#include <cstdio>
#include <vector>

namespace journey {
namespace {

// A JSON string literal (RFC 8259): quotes, backslashes and control characters escaped;
// other bytes (UTF-8) pass through.
std::string Quote(const std::string& text) {
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
          out += escaped;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string QuoteAll(const std::vector<std::string>& texts) {
  std::string out = "[";
  for (const std::string& text : texts) out += (out.size() > 1 ? "," : "") + Quote(text);
  return out + "]";
}

}  // namespace

std::string ToJson(const Report& r) {
  return "{\"user_id\":" + Quote(r.user_id) + ",\"email\":" + Quote(r.email) +
         ",\"login_user_id\":" + Quote(r.login_user_id) +
         ",\"read_email\":" + Quote(r.read_email) + ",\"payee_id\":" + Quote(r.payee_id) +
         ",\"balance_after_top_up_minor\":" + std::to_string(r.balance_after_top_up_minor) +
         ",\"balance_after_transfer_minor\":" + std::to_string(r.balance_after_transfer_minor) +
         ",\"search_results\":" + std::to_string(r.search_results) +
         ",\"error\":{\"code\":" + Quote(r.error.code) + ",\"reason\":" + Quote(r.error.reason) +
         ",\"domain\":" + Quote(r.error.domain) + ",\"fields\":" + QuoteAll(r.error.fields) +
         "},\"event\":{\"subject\":" + Quote(r.event.subject) +
         ",\"user_id\":" + Quote(r.event.user_id) + ",\"email\":" + Quote(r.event.email) + "}}";
}

}  // namespace journey
