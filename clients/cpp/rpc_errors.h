// Failed calls: their google.rpc.Status details (`grpc-status-details-bin`) decoded, and
// retries of the codes a journey step may meet while the stack catches up.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

namespace journey {

// A failed call as check_journey reads it.
struct ErrorReport {
  std::string code;    // google.rpc.Code's name: "INVALID_ARGUMENT"
  std::string reason;  // ErrorInfo.reason
  std::string domain;  // ErrorInfo.domain
  std::vector<std::string> fields;  // BadRequest.field_violations[].field
};

// A call that failed where the journey cannot go on.
class RpcError : public std::runtime_error {
 public:
  RpcError(const std::string& what, const grpc::Status& status);
  grpc::StatusCode code() const { return code_; }

 private:
  grpc::StatusCode code_;
};

// google.rpc.Code's canonical name of a status code ("INVALID_ARGUMENT").
std::string CodeName(grpc::StatusCode code);

// Decodes ErrorInfo and BadRequest from a failed call's error_details(); throws when the
// details are missing or carry no ErrorInfo (every error of ours has one).
ErrorReport DecodeError(const grpc::Status& status);

using Deadline = std::chrono::system_clock::time_point;

// Calls attempt until it succeeds, fails with a code not in retryable (an RpcError), or the
// deadline passes. UNAVAILABLE is always retried: a service still starting or briefly away
// (wallet answers it until it has identity's token signing keys). The attempt must resend
// the same request (and so the same request_id): the services make a retried mutation take
// effect once. A RetryInfo detail sets the wait.
void Retry(const std::string& what, std::initializer_list<grpc::StatusCode> retryable,
           Deadline deadline, const std::function<grpc::Status()>& attempt);

}  // namespace journey
