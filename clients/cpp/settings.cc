#include "settings.h"

#include <cstdlib>
#include <stdexcept>
#include <vector>

namespace journey {
namespace {

class Environment {
 public:
  std::string Text(const char* name) {
    const char* value = std::getenv(name);
    if (value == nullptr || *value == '\0') {
      missing_.push_back(name);
      return "";
    }
    return value;
  }

  std::int64_t Minor(const char* name) {
    const std::string text = Text(name);
    if (text.empty()) return 0;
    std::size_t used = 0;
    try {
      const long long value = std::stoll(text, &used);
      if (used == text.size()) return value;
    } catch (const std::exception&) {
    }
    missing_.push_back(std::string(name) + " (not an integer: " + text + ")");
    return 0;
  }

  void Check() const {
    if (missing_.empty()) return;
    std::string names;
    for (const std::string& name : missing_) names += (names.empty() ? "" : ", ") + name;
    throw std::runtime_error("environment variables not set: " + names);
  }

 private:
  std::vector<std::string> missing_;
};

}  // namespace

Settings ReadSettings() {
  Environment environment;
  Settings settings;
  settings.identity_addr = environment.Text("SUPERAPP_IDENTITY_ADDR");
  settings.wallet_addr = environment.Text("SUPERAPP_WALLET_ADDR");
  settings.catalogue_addr = environment.Text("SUPERAPP_CATALOGUE_ADDR");
  settings.nats_url = environment.Text("SUPERAPP_NATS_URL");
  settings.admin_email = environment.Text("SUPERAPP_ADMIN_EMAIL");
  settings.admin_password = environment.Text("SUPERAPP_ADMIN_PASSWORD");
  settings.top_up_minor = environment.Minor("SUPERAPP_TOP_UP_MINOR");
  settings.transfer_minor = environment.Minor("SUPERAPP_TRANSFER_MINOR");
  environment.Check();
  return settings;
}

}  // namespace journey
