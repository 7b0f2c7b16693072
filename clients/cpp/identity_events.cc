#include "identity_events.h"

#include <nats/nats.h>

#include <algorithm>
#include <cstdint>
#include <iostream>
#include <memory>
#include <stdexcept>

#include "superapp/events/v1/options.pb.h"
#include "superapp/identity/v1/events.pb.h"

namespace journey {
namespace {

// The JetStream stream identity publishes to (events.proto's file comment).
constexpr char kIdentityStream[] = "SUPERAPP_IDENTITY";

// The NATS C client's objects, each freed by its own destroy function.
template <typename T, void (*Destroy)(T*)>
struct Destroyer {
  void operator()(T* object) const { Destroy(object); }
};
template <typename T, void (*Destroy)(T*)>
using Owned = std::unique_ptr<T, Destroyer<T, Destroy>>;
using Options = Owned<natsOptions, natsOptions_Destroy>;
using Connection = Owned<natsConnection, natsConnection_Destroy>;
using JetStream = Owned<jsCtx, jsCtx_Destroy>;
using Subscription = Owned<natsSubscription, natsSubscription_Destroy>;
using Message = Owned<natsMsg, natsMsg_Destroy>;

void Check(natsStatus status, const std::string& what) {
  if (status == NATS_OK) return;
  const char* detail = nats_GetLastError(nullptr);
  throw std::runtime_error(what + ": " + natsStatus_GetText(status) +
                           (detail != nullptr ? std::string(" (") + detail + ")" : ""));
}

// The NATS subject an event message is published on: its superapp.events.v1.subject
// option, read from the generated descriptor.
template <typename Event>
std::string SubjectOf() {
  const std::string& subject =
      Event::descriptor()->options().GetExtension(superapp::events::v1::subject);
  if (subject.empty()) {
    throw std::runtime_error(Event::descriptor()->full_name() +
                             " has no superapp.events.v1.subject option");
  }
  return subject;
}

}  // namespace

EventReport AwaitUserRegistered(const std::string& nats_url, const std::string& user_id,
                                std::chrono::system_clock::time_point deadline) {
  using superapp::identity::v1::UserRegistered;
  const std::string subject = SubjectOf<UserRegistered>();
  const std::string& event_type = UserRegistered::descriptor()->full_name();

  natsOptions* raw_options = nullptr;
  Check(natsOptions_Create(&raw_options), "NATS options");
  Options options(raw_options);
  Check(natsOptions_SetURL(options.get(), nats_url.c_str()), "NATS URL " + nats_url);
  Check(natsOptions_SetName(options.get(), "superapp-cpp-journey"), "NATS client name");
  natsConnection* raw_connection = nullptr;
  Check(natsConnection_Connect(&raw_connection, options.get()),
        "connect to NATS at " + nats_url);
  Connection connection(raw_connection);
  jsCtx* raw_js = nullptr;
  Check(natsConnection_JetStream(&raw_js, connection.get(), nullptr), "JetStream context");
  JetStream jet_stream(raw_js);

  // An ephemeral ordered consumer from the stream's start: nothing is left on the server.
  jsSubOptions subscribe_options;
  Check(jsSubOptions_Init(&subscribe_options), "JetStream subscribe options");
  subscribe_options.Stream = kIdentityStream;
  subscribe_options.Ordered = true;
  subscribe_options.Config.DeliverPolicy = js_DeliverAll;
  natsSubscription* raw_subscription = nullptr;
  jsErrCode js_error = static_cast<jsErrCode>(0);
  Check(js_SubscribeSync(&raw_subscription, jet_stream.get(), subject.c_str(), nullptr,
                         &subscribe_options, &js_error),
        "subscribe to " + subject + " on " + kIdentityStream + " (JetStream error " +
            std::to_string(js_error) + ")");
  Subscription subscription(raw_subscription);

  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::system_clock::now());
    natsMsg* raw_message = nullptr;
    Check(natsSubscription_NextMsg(&raw_message, subscription.get(),
                                   std::max<std::int64_t>(left.count(), 1)),
          "no UserRegistered of " + user_id + " on " + subject);
    Message message(raw_message);
    const char* type = nullptr;
    if (natsMsgHeader_Get(message.get(), "ce-type", &type) != NATS_OK || type != event_type) {
      throw std::runtime_error(subject + " carried ce-type " + (type ? type : "(none)") +
                               ", not " + event_type);
    }
    UserRegistered event;
    if (!event.ParseFromArray(natsMsg_GetData(message.get()),
                              natsMsg_GetDataLength(message.get()))) {
      throw std::runtime_error("cannot decode " + event_type);
    }
    const char* event_id = nullptr;
    natsMsgHeader_Get(message.get(), "ce-id", &event_id);
    std::cerr << "journey: event " << (event_id ? event_id : "?") << " of " << event.user_id()
              << "\n";
    if (event.user_id() == user_id) {
      (void)natsSubscription_Unsubscribe(subscription.get());
      return EventReport{subject, event.user_id(), event.email()};
    }
  }
}

}  // namespace journey
