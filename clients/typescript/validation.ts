// Every request is checked against its protovalidate (buf.validate) rules before it is
// sent, so a request the contract forbids fails here instead of costing a round trip.
// The protos carry no buf.validate rules yet: validation then passes, and starts
// enforcing the rules as soon as protos/ declares them.

import type { Interceptor } from "@connectrpc/connect";
import { createValidator } from "@bufbuild/protovalidate";

export interface ValidationCount {
  requests: number;
}

export function validateRequests(count: ValidationCount): Interceptor {
  const validator = createValidator();
  return (next) => async (request) => {
    if (request.stream) {
      throw new Error(`${request.method.name}: streaming requests are not validated here`);
    }
    const result = validator.validate(request.method.input, request.message);
    if (result.kind !== "valid") {
      throw new Error(`${request.method.name} request not sent: ${result.error.message}`);
    }
    count.requests += 1;
    return next(request);
  };
}
