#include "rpc_errors.h"

#include <algorithm>
#include <iostream>
#include <thread>

#include "google/rpc/code.pb.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace journey {
namespace {

google::rpc::Status DetailsOf(const grpc::Status& status) {
  google::rpc::Status details;
  if (status.error_details().empty() || !details.ParseFromString(status.error_details())) {
    throw RpcError("no google.rpc.Status in grpc-status-details-bin", status);
  }
  return details;
}

// The wait a RetryInfo detail asks for, or zero.
std::chrono::milliseconds RetryDelay(const grpc::Status& status) {
  google::rpc::Status details;
  if (!details.ParseFromString(status.error_details())) return std::chrono::milliseconds(0);
  for (const google::protobuf::Any& detail : details.details()) {
    google::rpc::RetryInfo info;
    if (detail.UnpackTo(&info)) {
      return std::chrono::seconds(info.retry_delay().seconds()) +
             std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::nanoseconds(info.retry_delay().nanos()));
    }
  }
  return std::chrono::milliseconds(0);
}

}  // namespace

RpcError::RpcError(const std::string& what, const grpc::Status& status)
    : std::runtime_error(what + ": " + CodeName(status.error_code()) + " " +
                         status.error_message()),
      code_(status.error_code()) {}

std::string CodeName(grpc::StatusCode code) {
  // grpc::StatusCode and google.rpc.Code share their numbers; only the latter has names.
  const auto rpc_code = static_cast<google::rpc::Code>(code);
  if (!google::rpc::Code_IsValid(rpc_code)) return "CODE_" + std::to_string(code);
  return google::rpc::Code_Name(rpc_code);
}

ErrorReport DecodeError(const grpc::Status& status) {
  const google::rpc::Status details = DetailsOf(status);
  if (details.code() != status.error_code()) {
    throw RpcError("google.rpc.Status says code " + std::to_string(details.code()), status);
  }
  ErrorReport report{CodeName(status.error_code()), "", "", {}};
  for (const google::protobuf::Any& detail : details.details()) {
    google::rpc::ErrorInfo info;
    google::rpc::BadRequest bad_request;
    if (detail.Is<google::rpc::ErrorInfo>() && detail.UnpackTo(&info)) {
      report.reason = info.reason();
      report.domain = info.domain();
    } else if (detail.Is<google::rpc::BadRequest>() && detail.UnpackTo(&bad_request)) {
      for (const auto& violation : bad_request.field_violations()) {
        report.fields.push_back(violation.field());
      }
    }
  }
  if (report.reason.empty()) throw RpcError("the error carries no ErrorInfo", status);
  return report;
}

void Retry(const std::string& what, std::initializer_list<grpc::StatusCode> retryable,
           Deadline deadline, const std::function<grpc::Status()>& attempt) {
  std::chrono::milliseconds wait(100);
  for (int tries = 1;; ++tries) {
    const grpc::Status status = attempt();
    if (status.ok()) return;
    if (status.error_code() != grpc::StatusCode::UNAVAILABLE &&
        std::find(retryable.begin(), retryable.end(), status.error_code()) == retryable.end()) {
      throw RpcError(what, status);
    }
    std::chrono::milliseconds delay = RetryDelay(status);
    if (delay.count() == 0) delay = wait;
    if (std::chrono::system_clock::now() + delay > deadline) {
      throw RpcError(what + ": gave up after " + std::to_string(tries) + " tries", status);
    }
    std::cerr << "journey: " << what << ": " << CodeName(status.error_code()) << " (try "
              << tries << "), again in " << delay.count() << " ms\n";
    std::this_thread::sleep_for(delay);
    wait = std::min(wait * 2, std::chrono::milliseconds(1000));
  }
}

}  // namespace journey
