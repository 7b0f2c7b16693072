// The C++ journey client: drives the live stack with grpc++ sync stubs generated from
// protos/ alone, the journey of tests/polyglot/conftest.py (check_journey), and prints its
// report as one JSON line on stdout. Settings come from the environment (settings.h);
// progress goes to stderr.
#include <grpcpp/grpcpp.h>
#include <nats/nats.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <iostream>
#include <memory>
#include <random>
#include <string>

#include "identity_events.h"
#include "report.h"
#include "rpc_errors.h"
#include "settings.h"
#include "superapp/catalogue/v1/catalogue_service.grpc.pb.h"
#include "superapp/identity/v1/identity_service.grpc.pb.h"
#include "superapp/wallet/v1/wallet_service.grpc.pb.h"

namespace journey {
namespace {

namespace catalogue = superapp::catalogue::v1;
namespace identity = superapp::identity::v1;
namespace wallet = superapp::wallet::v1;

// The whole journey must end well inside the test's own timeout (120 s).
constexpr std::chrono::seconds kJourneyTimeout(90);
constexpr char kCurrency[] = "EUR";
constexpr char kPassword[] = "correct horse battery staple";

std::string RandomHex(int bytes) {
  static std::random_device device;
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < bytes; ++i) {
    const unsigned value = device() & 0xff;
    out += kDigits[value >> 4];
    out += kDigits[value & 0xf];
  }
  return out;
}

class Journey {
 public:
  explicit Journey(Settings settings)
      : settings_(std::move(settings)),
        deadline_(std::chrono::system_clock::now() + kJourneyTimeout),
        identity_(identity::IdentityService::NewStub(Channel(settings_.identity_addr))),
        wallet_(wallet::WalletService::NewStub(Channel(settings_.wallet_addr))),
        catalogue_(catalogue::CatalogueService::NewStub(Channel(settings_.catalogue_addr))) {}

  Report Run() {
    // The stack's bootstrap admin gets its role at sign-up; it may exist already.
    try {
      Register(settings_.admin_email, settings_.admin_password);
    } catch (const RpcError& error) {
      if (error.code() != grpc::StatusCode::ALREADY_EXISTS) throw;
    }
    const std::string suffix = RandomHex(6);
    Report report;
    report.email = "cpp-payer-" + suffix + "@example.com";
    report.user_id = Register(report.email, kPassword).user_id();
    report.payee_id = Register("cpp-payee-" + suffix + "@example.com", kPassword).user_id();
    std::cerr << "journey: registered payer " << report.user_id << " and payee "
              << report.payee_id << "\n";

    const identity::LoginResponse payer = Login(report.email, kPassword);
    report.login_user_id = payer.user().user_id();
    const std::string payer_token = payer.tokens().access_token();
    identity::GetUserRequest get_user;
    get_user.set_user_id(report.user_id);
    identity::GetUserResponse read;
    Retry("GetUser", {}, deadline_, [&] {
      auto context = Context(payer_token);
      return identity_->GetUser(context.get(), get_user, &read);
    });
    report.read_email = read.user().email();

    const std::string admin_token =
        Login(settings_.admin_email, settings_.admin_password).tokens().access_token();
    // The wallet opens when wallet consumes identity's UserRegistered: until then NOT_FOUND.
    // The retry keeps its request_id, so a credit that did land is not made twice.
    wallet::CreditWalletRequest credit;
    credit.set_user_id(report.user_id);
    credit.mutable_amount()->set_currency_code(kCurrency);
    credit.mutable_amount()->set_amount_minor(settings_.top_up_minor);
    credit.set_description("C++ journey top-up");
    credit.set_request_id("cpp-top-up-" + RandomHex(8));
    Retry("CreditWallet", {grpc::StatusCode::NOT_FOUND}, deadline_, [&] {
      auto context = Context(admin_token);
      wallet::CreditWalletResponse response;
      return wallet_->CreditWallet(context.get(), credit, &response);
    });
    report.balance_after_top_up_minor = Balance(payer_token, report.user_id);

    // The payee's wallet opens from its own event, so the transfer may meet NOT_FOUND too.
    wallet::CreateTransferRequest transfer;
    transfer.set_from_user_id(report.user_id);
    transfer.set_to_user_id(report.payee_id);
    transfer.mutable_amount()->set_currency_code(kCurrency);
    transfer.mutable_amount()->set_amount_minor(settings_.transfer_minor);
    transfer.set_description("C++ journey transfer");
    transfer.set_request_id("cpp-transfer-" + RandomHex(8));
    Retry("CreateTransfer", {grpc::StatusCode::NOT_FOUND}, deadline_, [&] {
      auto context = Context(payer_token);
      wallet::CreateTransferResponse response;
      return wallet_->CreateTransfer(context.get(), transfer, &response);
    });
    report.balance_after_transfer_minor = Balance(payer_token, report.user_id);

    catalogue::SearchProductsRequest search;
    search.set_query("mug");
    search.set_page_size(10);
    catalogue::SearchProductsResponse found;
    Retry("SearchProducts", {}, deadline_, [&] {
      auto context = Context("");
      return catalogue_->SearchProducts(context.get(), search, &found);
    });
    report.search_results = found.results_size();

    identity::RegisterUserRequest malformed;
    malformed.set_email("not an email");
    malformed.set_password(kPassword);
    malformed.set_display_name("Malformed");
    malformed.set_request_id("cpp-malformed-" + RandomHex(8));
    identity::RegisterUserResponse unexpected;
    auto context = Context("");
    const grpc::Status refused = identity_->RegisterUser(context.get(), malformed, &unexpected);
    if (refused.ok()) throw std::runtime_error("RegisterUser with a malformed email succeeded");
    report.error = DecodeError(refused);

    report.event = AwaitUserRegistered(settings_.nats_url, report.user_id, deadline_);
    return report;
  }

 private:
  static std::shared_ptr<grpc::Channel> Channel(const std::string& address) {
    return grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  }

  // A call's context: the journey's deadline and, given a token, its bearer authorization.
  // A ClientContext serves one call only, so every attempt makes its own.
  std::unique_ptr<grpc::ClientContext> Context(const std::string& token) const {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(deadline_);
    if (!token.empty()) context->AddMetadata("authorization", "Bearer " + token);
    return context;
  }

  // Signs a user up, retrying RESOURCE_EXHAUSTED (identity's password-hashing budget on a
  // busy machine) with the same request_id.
  identity::User Register(const std::string& email, const std::string& password) {
    identity::RegisterUserRequest request;
    request.set_email(email);
    request.set_password(password);
    request.set_display_name("C++ journey");
    request.set_request_id("cpp-register-" + RandomHex(8));
    identity::RegisterUserResponse response;
    Retry("RegisterUser", {grpc::StatusCode::RESOURCE_EXHAUSTED}, deadline_, [&] {
      auto context = Context("");
      return identity_->RegisterUser(context.get(), request, &response);
    });
    return response.user();
  }

  identity::LoginResponse Login(const std::string& email, const std::string& password) {
    identity::LoginRequest request;
    request.set_email(email);
    request.set_password(password);
    identity::LoginResponse response;
    Retry("Login", {grpc::StatusCode::RESOURCE_EXHAUSTED}, deadline_, [&] {
      auto context = Context("");
      return identity_->Login(context.get(), request, &response);
    });
    return response;
  }

  // The user's available EUR, as GetWallet answers it.
  std::int64_t Balance(const std::string& token, const std::string& user_id) {
    wallet::GetWalletRequest request;
    request.set_user_id(user_id);
    wallet::GetWalletResponse response;
    Retry("GetWallet", {}, deadline_, [&] {
      auto context = Context(token);
      return wallet_->GetWallet(context.get(), request, &response);
    });
    for (const wallet::Balance& balance : response.wallet().balances()) {
      if (balance.currency_code() == kCurrency) return balance.available_minor();
    }
    return 0;
  }

  const Settings settings_;
  const Deadline deadline_;
  const std::unique_ptr<identity::IdentityService::Stub> identity_;
  const std::unique_ptr<wallet::WalletService::Stub> wallet_;
  const std::unique_ptr<catalogue::CatalogueService::Stub> catalogue_;
};

}  // namespace
}  // namespace journey

int main() {
  int status = 0;
  try {
    journey::Journey journey(journey::ReadSettings());
    const journey::Report report = journey.Run();
    std::cout << journey::ToJson(report) << std::endl;
  } catch (const std::exception& error) {
    std::cerr << "journey: " << error.what() << "\n";
    status = 1;
  }
  // The NATS C client's library threads and memory.
  nats_Close();
  return status;
}
