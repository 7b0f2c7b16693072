// A failed call as our services describe it: the status code plus the google.rpc.Status
// details from `grpc-status-details-bin` (ErrorInfo always, BadRequest for invalid input).

import { Code, ConnectError } from "@connectrpc/connect";

import {
  BadRequestSchema,
  ErrorInfoSchema,
} from "../../.cache/clients/typescript/gen/google/rpc/error_details_pb.js";

export interface RpcError {
  code: string;
  reason: string;
  domain: string;
  fields: string[];
}

// gRPC's canonical name (INVALID_ARGUMENT) from Connect's enum key (InvalidArgument).
export function codeName(code: Code): string {
  return Code[code].replace(/(?<=[a-z])(?=[A-Z])/g, "_").toUpperCase();
}

export function describeRpcError(error: ConnectError): RpcError {
  const [info] = error.findDetails(ErrorInfoSchema);
  if (info === undefined) {
    throw new Error(`${codeName(error.code)} without an ErrorInfo detail: ${error.message}`);
  }
  const violations = error.findDetails(BadRequestSchema).flatMap((b) => b.fieldViolations);
  return {
    code: codeName(error.code),
    reason: info.reason,
    domain: info.domain,
    fields: violations.map((v) => v.field),
  };
}

// The error a call was expected to fail with; anything else, or success, is a bug.
export async function expectRpcError(call: Promise<unknown>): Promise<RpcError> {
  try {
    await call;
  } catch (error) {
    if (error instanceof ConnectError) {
      return describeRpcError(error);
    }
    throw error;
  }
  throw new Error("the call succeeded; it was expected to fail");
}
